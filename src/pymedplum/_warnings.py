"""Warnings the SDK gives the developer, attributed to the developer's own line, and
``PACKAGE_DIR``, which tells the SDK's frames from others (hooks.py uses it too)."""

from __future__ import annotations

import os
import sys
import warnings

# Every pymedplum file starts with this: a frame of any other file is the caller's (or a hook's).
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_caller(message: str) -> None:
    """``warnings.warn(message)`` (a UserWarning) attributed to the first frame outside
    pymedplum, so that it names the caller's line, whichever client and method led here (and
    the default filter, once per line, does not hide it after the first call site)."""
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)
