"""A response body's Content-Encoding, decoded in bounded steps, and the decompression-bomb rule.

httpx decodes a chunk as it arrives (``aiter_bytes``), in one decompress call per network read
of up to 64 KiB: gzip turns that into up to 66 MB, zstd into 2 GB, brotli into far more (1 GiB
of zeros is 1,681 bytes of brotli). ``BodyDecoder`` uses httpx's own decoders, so the body
decodes exactly as before, but hands each one its input in slices small enough that one call
yields a few MiB at most (measured: gzip/deflate 1,032x at most, so a 4 KiB slice gives
4 MiB; zstd 32,768x, 128 bytes give 4 MiB; brotli 16 bytes gave 16 MiB of zeros), through every
coding of a chain. Where the brotli package bounds a call's output itself (``brotli`` or
``brotlicffi`` 1.2+: ``output_buffer_limit``), ``br`` is handed whole chunks and its output
taken 1 MiB at a time instead: 16-byte slices cost a Python call per 16 bytes, 200 times
httpx's time on an incompressible body (a 30 MB Binary: 1.1 s instead of 5 ms). After each
piece the bomb rule is checked, so a bomb is refused before much more than
``MIN_REFUSED_SIZE`` of it was decoded (docs/errors-and-retries.md).

A body in a coding httpx cannot decode here (``br`` without the ``brotli`` package, ``zstd``
without ``zstandard``, ``compress``) is refused with ``UnsupportedEncodingError``: httpx would
hand it over undecoded, compressed bytes read as the body (a Binary download's content).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import httpx._decoders
from httpx._decoders import SUPPORTED_DECODERS, ContentDecoder  # what aiter_bytes uses

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_RATIO",
    "MIN_REFUSED_SIZE",
    "BodyDecoder",
    "DecompressionBombError",
    "UnsupportedEncodingError",
    "answered_unread",
    "why_unread",
]

# The rule: a body is refused once its decoded size is past MIN_REFUSED_SIZE *and* more than
# MAX_RATIO times the compressed bytes decoded so far (counted as handed to the decoder: exact,
# where response.num_bytes_downloaded runs up to a 64 KiB read ahead of it). gzip -9 (or -6)
# of zeros reaches 1,028x (deflate's ceiling is 1,032x); realistic FHIR JSON gzips 5-30x, a
# searchset of identical entries 190-205x; so 500x leaves 2.4x of room above the most
# repetitive JSON and refuses a maximal gzip bomb with 2x to spare. A body under 64 MiB is
# never refused, and an uncompressed one (a large Binary download) is never checked: memory is
# bounded by 64 MiB or 500 times what the server actually sent.
MIN_REFUSED_SIZE = 64 * 1024 * 1024
MAX_RATIO = 500

# Compressed bytes handed to one decoder call, per coding (see the module docstring); the
# default is for a coding a later httpx may add.
_SLICE = {"gzip": 4096, "deflate": 4096, "zstd": 128, "br": 16}
_DEFAULT_SLICE = 16
# What one brotli call may yield where the package bounds it (its buffer stops growing past
# the limit: measured, 2 MiB at most for 1 MiB).
_BROTLI_OUTPUT_LIMIT = 1 << 20

# RFC 9110 8.4.1: a recipient should take these for the coding they name (httpx does not).
_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}
# The package httpx decodes a coding with, when it is not installed.
_PACKAGE_FOR = {"br": "brotli", "zstd": "zstandard"}
_CODING_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


def accept_encoding(supported: Iterable[str]) -> str:
    """The ``Accept-Encoding`` of the pools the SDK creates: ``gzip`` and ``deflate`` (always in
    ``supported``, the codings httpx can decode), which ``BodyDecoder`` decodes at about httpx's
    own speed and without surprises, whatever packages are installed. Not ``br``, though
    Medplum's server prefers it (the ``compression`` middleware, 1.8.1 in 5.0.10): bounded, it
    is as fast as httpx only with a brotli package that bounds a call's output (1.2+); with an
    older one it is decoded 16 bytes at a time, 7x slower on a searchset (an 8.6 MB one, 0.7 MB
    of brotli: 40 ms instead of 6; gzip 10 ms instead of 9) and 200x on an incompressible
    Binary, and gzip costs only ~15 % more bytes. Not ``zstd`` (which Medplum does not send):
    httpx's decoder fails on a multi-frame body whose frame ends where a piece handed to it
    ends, and 128-byte pieces make that 500 times likelier than its 64 KiB reads. A server
    sending either anyway is still decoded, bounded (refused with
    ``UnsupportedEncodingError`` when its package is not installed)."""
    return ", ".join(name for name in ("gzip", "deflate") if name in supported)


ACCEPT_ENCODING = accept_encoding(SUPPORTED_DECODERS)


class DecompressionBombError(httpx.DecodingError):
    """A body refused by the decompression-bomb rule (an ``httpx.DecodingError``: it is an
    undecodable body to every caller, and never retried as a transient failure).
    ``decoded_bytes`` and ``compressed_bytes`` say how far it was read."""

    def __init__(self, decoded_bytes: int, compressed_bytes: int) -> None:
        super().__init__(
            f"refused: the body decoded to over {MIN_REFUSED_SIZE >> 20} MiB at more than "
            f"{MAX_RATIO} times its {compressed_bytes:,} compressed bytes read so far (a "
            "decompression bomb)"
        )
        self.decoded_bytes = decoded_bytes
        self.compressed_bytes = compressed_bytes

    def __reduce__(self) -> tuple[type[DecompressionBombError], tuple[int, int]]:
        return type(self), (self.decoded_bytes, self.compressed_bytes)  # pickled without request


class UnsupportedEncodingError(httpx.DecodingError):
    """A body in a Content-Encoding httpx cannot decode here (an ``httpx.DecodingError``, as a
    broken one): ``br`` without the ``brotli`` package, ``zstd`` without ``zstandard``,
    ``compress`` or a coding no one registered. httpx would pass such a body on undecoded.
    ``encoding`` is the coding's name (``None`` for a name that is no registry token); ``package``
    the one httpx decodes it with, when there is one."""

    def __init__(self, encoding: str | None) -> None:
        self.encoding = encoding
        self.package = _PACKAGE_FOR.get(encoding or "")
        super().__init__(f"the body is {_encoded_with(encoding)}, which cannot be decoded here")

    def __reduce__(self) -> tuple[type[UnsupportedEncodingError], tuple[str | None]]:
        return type(self), (self.encoding,)  # pickled without request


def _encoded_with(encoding: str | None) -> str:
    if encoding is None:
        return "in a Content-Encoding that is no coding name"
    return f"encoded with {encoding}"


class _Sliced:
    """One coding, its httpx decoder fed ``step`` bytes at a time: yields, for each slice, its
    size and what the decoder made of it."""

    __slots__ = ("_decoder", "_step")

    def __init__(self, decoder: ContentDecoder, step: int) -> None:
        self._decoder = decoder
        self._step = step

    def decode(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        decoder, step = self._decoder, self._step
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            yield len(piece), decoder.decode(piece)

    def flush(self) -> Iterator[bytes]:
        yield self._decoder.flush()


class _OutputBoundedBrotli:
    """``br`` through httpx's ``BrotliDecoder`` whose brotli package bounds a call's output
    (``process(data, output_buffer_limit=)``, ``can_accept_more_data()``: ``brotli`` and
    ``brotlicffi`` 1.2+): a whole chunk goes in, then ``process(b"")`` until nothing more comes,
    each call yielding about ``_BROTLI_OUTPUT_LIMIT``. Errors become ``httpx.DecodingError`` and
    ``flush`` ends with httpx's own (brotlicffi's check for a truncated stream), as httpx's
    ``decode`` would have. The compressed size of a chunk is counted before its output."""

    __slots__ = ("_decoder", "_error", "_process")

    def __init__(self, decoder: Any, error: type[BaseException]) -> None:
        self._decoder = decoder
        self._process = decoder.decompressor.process
        self._error = error

    @classmethod
    def wrap(cls, decoder: ContentDecoder) -> _OutputBoundedBrotli | None:
        """The stage for httpx's brotli decoder, or ``None`` when its package has no output
        limit (``brotli`` before 1.2, brotlipy) or the decoder is not the one this knows."""
        module = getattr(httpx._decoders, "brotli", None)
        error = getattr(module, "error", None)
        inner = getattr(decoder, "decompressor", None)
        if (
            isinstance(error, type)
            and issubclass(error, BaseException)
            and hasattr(decoder, "seen_data")
            and callable(getattr(inner, "process", None))
            and callable(getattr(inner, "can_accept_more_data", None))
        ):
            return cls(decoder, error)
        return None

    def decode(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        if not data:
            return
        self._decoder.seen_data = True  # what httpx's decode sets: its flush then checks the end
        yield len(data), self._call(data)
        yield from self._drain()

    def flush(self) -> Iterator[bytes]:
        for _, out in self._drain():
            yield out
        yield self._decoder.flush()

    def _drain(self) -> Iterator[tuple[int, bytes]]:
        # Output left over the limit comes with empty input (can_accept_more_data() turns True
        # once the input is taken in, with output still pending: measured on brotli 1.2.1).
        # A decoder that still holds input when this ends refuses the next chunk: an error.
        while out := self._call(b""):
            yield 0, out

    def _call(self, data: bytes) -> bytes:
        try:
            out: bytes = self._process(data, output_buffer_limit=_BROTLI_OUTPUT_LIMIT)
        except self._error as exc:
            raise httpx.DecodingError(str(exc)) from exc
        return out


_Stage = _Sliced | _OutputBoundedBrotli


def _stage(name: str) -> _Stage:
    decoder = SUPPORTED_DECODERS[name]()
    if name == "br" and (bounded := _OutputBoundedBrotli.wrap(decoder)) is not None:
        return bounded
    return _Sliced(decoder, _SLICE.get(name, _DEFAULT_SLICE))


class BodyDecoder:
    """Decodes one response body: ``decode(raw)`` yields the decoded pieces of a raw chunk,
    ``flush()`` the rest; ``DecompressionBombError`` once the rule trips,
    ``UnsupportedEncodingError`` at the first byte of a body in a coding it cannot decode."""

    __slots__ = ("_stages", "_unsupported", "decoded", "raw")

    def __init__(self, stages: list[_Stage], unsupported: str | None = None) -> None:
        self._stages = stages  # in decoding order: the coding applied last comes first
        # A coding of the chain httpx cannot decode ("" for one whose name is not shown).
        self._unsupported = unsupported
        self.raw = 0  # compressed bytes handed to the first decoder
        self.decoded = 0

    @classmethod
    def for_headers(cls, headers: httpx.Headers) -> BodyDecoder | None:
        """The decoder of a body with these headers, or ``None`` when there is nothing to
        decode (no Content-Encoding, or identity only). ``x-gzip`` is read as ``gzip``. A coding
        httpx cannot decode makes a decoder that refuses any byte of body: no stage of the
        chain can be undone correctly without it."""
        names = [
            _ALIASES.get(name, name)
            for value in headers.get_list("content-encoding", split_commas=True)
            if (name := value.strip().lower()) not in ("", "identity")
        ]
        for name in names:
            if name not in SUPPORTED_DECODERS:
                # Only a short registry-like token goes into a message; anything else is
                # server text that says nothing to the caller.
                return cls([], name if _CODING_NAME.fullmatch(name) else "")
        stages = [_stage(name) for name in reversed(names)]
        return cls(stages) if stages else None

    def decode(self, raw: bytes) -> Iterator[bytes]:
        if self._unsupported is not None and raw:
            raise UnsupportedEncodingError(self._unsupported or None)
        return self._feed(0, raw)

    def flush(self) -> Iterator[bytes]:
        for index, stage in enumerate(self._stages):
            for out in stage.flush():
                yield from self._feed(index + 1, out)

    def _feed(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                self.decoded += len(data)
                # Cheap: two comparisons per piece of a few MiB at most.
                if self.decoded > MIN_REFUSED_SIZE and self.decoded > MAX_RATIO * self.raw:
                    raise DecompressionBombError(self.decoded, self.raw)
                yield data
            return
        for taken, out in self._stages[index].decode(data):
            if index == 0:
                self.raw += taken
            if out:
                yield from self._feed(index + 1, out)


def _accept_encoding_sent(exc: httpx.DecodingError) -> str | None:
    """The ``Accept-Encoding`` of the request the body answered (``""`` when it sent none), or
    ``None`` when the error has no request. Only a short header is quoted in a message."""
    request = exc._request  # None when the error was raised outside a response
    if request is None:
        return None
    sent = request.headers.get("accept-encoding", "")
    return sent if len(sent) <= 100 else None


def _asks_for(accept_encoding: str, coding: str) -> bool:
    """Whether an Accept-Encoding value accepts ``coding`` (by name or ``*``, not at ``q=0``)."""
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        if name.strip().lower() not in (coding, "*"):
            continue
        weight = params.strip().lower()
        if weight.startswith("q=") and weight[2:].strip().rstrip("0").rstrip(".") in ("0", ""):
            continue
        return True
    return False


def answered_unread(exc: httpx.DecodingError) -> str:
    """What a message says of an answer lost to its body (a 2xx, whose data the call needed):
    the server answered, and why its body was not read."""
    return "the server answered, but " + why_unread(exc)


def why_unread(exc: httpx.DecodingError) -> str:
    """Why an answer's body was not read, for a message (never the body itself)."""
    if isinstance(exc, DecompressionBombError):
        return (
            f"its body was refused: it decoded to over {MIN_REFUSED_SIZE >> 20} MiB at more "
            f"than {MAX_RATIO} times its compressed size (a decompression bomb)"
        )
    if isinstance(exc, UnsupportedEncodingError):
        why = f"its body is {_encoded_with(exc.encoding)}, which httpx cannot decode here"
        if exc.package is not None:
            why += f" without the {exc.package} package: install it"
            sent = _accept_encoding_sent(exc)
            if sent is not None and not _asks_for(sent, exc.encoding or ""):
                # The SDK's own pool asks for gzip and deflate only: nothing of the caller's
                # to change, and "do not ask for br" would send them looking for a setting.
                said = f"Accept-Encoding is {sent!r}" if sent else "sent no Accept-Encoding"
                why += f" (the server sent it unasked: the request's {said})"
            else:
                why += (
                    f", or do not ask for {exc.encoding} (the Accept-Encoding of your "
                    "http_client, or of headers=)"
                )
        return why
    return "its body could not be decoded (its Content-Encoding)"
