"""Raw request content: a bytes body and its MIME type checked (a Binary upload, the low-level
``content=``), the low-level ``data=`` as a form body, and :class:`ChunkedBody`, the stream a
large body is sent in.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

from pymedplum._request_builders.headers import check_headers, has_header


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


_FORM_BOOL = {True: "true", False: "false"}


def form_body(
    data: Mapping[str, Any], json: Any, content: bytes | None, headers: Mapping[str, str] | None
) -> tuple[bytes, dict[str, str]]:
    """The low-level ``post`` / ``put``'s ``data=``: an ``application/x-www-form-urlencoded``
    body and the headers to send (``headers`` with that Content-Type unless it has one);
    TypeError / ValueError naming ``data[key]`` for a value that is no form field."""
    if json is not None or content is not None:
        raise TypeError("pass only one of json=, content= and data=")
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping of form fields, got {type(data).__name__}")
    for key, value in data.items():
        # str() of these is a Python repr, never a form value: refuse rather than send
        # "parameter=[{'name': ...}]". Most likely a JSON body passed as data= (pymedplum 0.6's
        # post(path, data) sent JSON).
        if value is None or isinstance(
            value, (Mapping, list, tuple, set, frozenset, bytes, bytearray, BaseModel)
        ):
            raise TypeError(
                f"data[{str(key)!r}] must be a form field value (str or number), got "
                f"{type(value).__name__}; data= sends form fields, pass json= for a JSON body"
            )
        if isinstance(value, float) and not math.isfinite(value):
            # As params= (check_query_params): str() would send "nan" or "inf".
            raise ValueError(f"data[{str(key)!r}] must be a finite number, got {value!r}")
    # A bool is written as params= writes it (httpx: "true"), not as str() does ("True").
    fields = [(str(k), _FORM_BOOL[v] if isinstance(v, bool) else str(v)) for k, v in data.items()]
    body = urlencode(fields).encode()
    # headers= checked here, as the client's _prepare would (it sees only the merged dict):
    # dict("abc") failed with a bare ValueError, and "" or [] were taken as no headers.
    out = dict(check_headers(headers) or {})
    if not has_header(out, "Content-Type"):
        out["Content-Type"] = "application/x-www-form-urlencoded"
    return body, out


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
