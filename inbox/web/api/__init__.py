"""The API for the agency's own systems (``/api/v1``): token-authenticated, versioned JSON."""
