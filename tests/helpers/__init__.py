"""Test helpers shared by several suites (per-channel citizen adapters: ``channels``)."""
