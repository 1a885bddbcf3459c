"""Replay tests of real Medplum responses (cassettes recorded from tests/server)."""
