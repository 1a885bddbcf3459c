"""Client runtime tests: written once in _async/, unasync'd into _sync/."""
