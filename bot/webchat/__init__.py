"""The web chat on the agency's site: the demo channel that needs no platform account."""
