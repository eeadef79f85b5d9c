"""The MAX messenger channel (docs/max.md)."""
