"""Raw request content: a bytes body and its MIME type checked (a Binary upload, the low-level
``content=``), and :class:`ChunkedBody`, the stream a large body is sent in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx


def binary_content(arg: str, value: object) -> bytes:
    """``value`` as bytes when it is bytes-like; else TypeError naming ``arg``. httpx would take
    a str (encoded as UTF-8), ``None`` (an empty body) or a file (read once: a 401 replay would
    send it empty), each uploading something else than the caller's bytes without an error."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    hint = ""
    if isinstance(value, str):
        hint = " (encode a str first, e.g. content.encode())"
    elif hasattr(value, "read"):
        hint = " (pass the file's bytes, e.g. f.read())"
    raise TypeError(f"{arg} must be bytes, got {type(value).__name__}{hint}")


# Request bodies larger than this are handed to the transport in slices of this size.
BODY_CHUNK = 256 * 1024


class ChunkedBody(httpx.ByteStream):
    """A request body sent in ``BODY_CHUNK`` slices. httpx hands a ``bytes`` body to the
    transport whole, and h11 copies what it is handed into one ``bytes`` with its framing: a
    50 MB Binary upload took another 50-85 MB while it was sent. Slices of a memoryview copy
    256 KB at a time. The request keeps its ``content`` (the same bytes, not a copy) and its
    Content-Length; like ``httpx.ByteStream`` it can be sent again (a retry, a 401 replay)."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._body)
        for start in range(0, len(view), BODY_CHUNK):
            yield bytes(view[start : start + BODY_CHUNK])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def mime_type(arg: str, value: object) -> str:
    """``value`` if it looks like a MIME type (``type/subtype``); else ValueError naming ``arg``."""
    if not isinstance(value, str):
        # By type only: a resource passed here by mistake would be printed whole.
        raise TypeError(
            f"{arg} must be a MIME type str such as 'application/pdf', got {type(value).__name__}"
        )
    if "/" not in value or "\n" in value or "\r" in value:
        raise ValueError(f"{arg} must be a MIME type such as 'application/pdf', got {value!r}")
    return value
