"""The one reading of a response body: API calls and the token request alike."""

from __future__ import annotations

import io

import httpx

from pymedplum._decoding import BodyDecoder

__all__ = ["read_body"]


async def read_body(response: httpx.Response) -> None:
    """Read the body into one growing buffer that becomes ``response.content``. httpx's
    ``aread()`` keeps every chunk in a list and then joins them: two full copies of a large
    body at its peak (a 50 MB Binary download took 100 MB); this takes one (plus the buffer's
    1/8 headroom: ``BytesIO.getvalue()`` hands over its buffer without copying it). A
    Content-Encoding is decoded by ``BodyDecoder`` in bounded steps: a decompression bomb is
    refused (``DecompressionBombError``, an ``httpx.DecodingError``) once it decodes past
    ``_decoding.MIN_REFUSED_SIZE`` at an absurd ratio, not read to the end; a body in a
    coding httpx cannot decode here (``br`` without brotli) is refused at its first byte
    (``UnsupportedEncodingError``), not kept undecoded as ``aread()`` would. The response is
    closed on any failure (a cancellation included), as ``aread()`` would."""
    if response.is_stream_consumed:  # built with its body already read (a MockTransport's)
        return
    try:
        buffer = io.BytesIO()
        decoder = BodyDecoder.for_headers(response.headers)
        if decoder is None:  # nothing to decode: no check either (a large Binary download)
            async for chunk in response.aiter_raw():
                buffer.write(chunk)
        else:
            async for chunk in response.aiter_raw():
                for piece in decoder.decode(chunk):
                    buffer.write(piece)
            for piece in decoder.flush():
                buffer.write(piece)
        # What aread() sets (httpx 0.27 and 0.28): the body, read once. Were a later httpx to
        # keep it elsewhere, response.content would raise ResponseNotRead at the first call.
        response._content = buffer.getvalue()
    except BaseException as exc:
        if isinstance(exc, httpx.DecodingError) and exc._request is None:
            exc.request = response.request  # as aiter_bytes() would have set it
        await response.aclose()
        raise
