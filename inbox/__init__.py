"""Unified inbox: conversations, messages, SLA clocks, operators and the ingest pipeline."""
