"""Async client tests (the source of ../_sync/)."""
