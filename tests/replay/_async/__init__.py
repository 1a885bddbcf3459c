"""Async replay tests (the source of ../_sync/)."""
