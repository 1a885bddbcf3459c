"""A response body's Content-Encoding, decoded in bounded steps, and the decompression-bomb rule.

httpx decodes a chunk as it arrives (``aiter_bytes``), in one decompress call per network read
of up to 64 KiB: gzip turns that into up to 66 MB, zstd into 2 GB, brotli into far more (1 GiB
of zeros is 1,681 bytes of brotli). ``BodyDecoder`` uses httpx's own decoders, so the body
decodes exactly as before, but hands each one its input in slices small enough that one call
yields a few MiB at most (measured: gzip/deflate 1,032x at most, so a 4 KiB slice gives
4 MiB; zstd 32,768x, 128 bytes give 4 MiB; brotli 16 bytes gave 16 MiB of zeros), through every
coding of a chain. After each piece the bomb rule is checked, so a bomb is refused before much
more than ``MIN_REFUSED_SIZE`` of it was decoded (docs/errors-and-retries.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import httpx
from httpx._decoders import SUPPORTED_DECODERS, ContentDecoder  # what aiter_bytes uses

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_RATIO",
    "MIN_REFUSED_SIZE",
    "BodyDecoder",
    "DecompressionBombError",
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


def accept_encoding(supported: Iterable[str]) -> str:
    """The ``Accept-Encoding`` of the pools the SDK creates: ``gzip`` and ``deflate`` (always in
    ``supported``, the codings httpx can decode), which ``BodyDecoder`` decodes at about httpx's
    own speed and without surprises. Not ``br``, though Medplum's server prefers it (the
    ``compression`` middleware, 1.8.1 in 5.0.10): bounded, it is decoded 16 bytes at a time,
    7x slower than httpx decodes it (an 8.6 MB searchset, 0.7 MB of brotli: 40 ms instead of
    6; gzip 10 ms instead of 9), and gzip costs only ~15 % more bytes. Not ``zstd`` (which
    Medplum does not send): httpx's decoder fails on a multi-frame body whose frame ends where a
    piece handed to it ends, and 128-byte pieces make that 500 times likelier than its 64 KiB
    reads. A server sending either anyway is still decoded, bounded."""
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


class BodyDecoder:
    """Decodes one response body: ``decode(raw)`` yields the decoded pieces of a raw chunk,
    ``flush()`` the rest; ``DecompressionBombError`` once the rule trips."""

    __slots__ = ("_stages", "decoded", "raw")

    def __init__(self, stages: list[tuple[ContentDecoder, int]]) -> None:
        self._stages = stages  # in decoding order: the coding applied last comes first
        self.raw = 0  # compressed bytes handed to the first decoder
        self.decoded = 0

    @classmethod
    def for_headers(cls, headers: httpx.Headers) -> BodyDecoder | None:
        """The decoder of a body with these headers, or ``None`` when httpx would decode
        nothing (no Content-Encoding, identity, or only codings it does not know)."""
        names = [
            value.strip().lower()
            for value in headers.get_list("content-encoding", split_commas=True)
        ]
        stages = [
            (SUPPORTED_DECODERS[name](), _SLICE.get(name, _DEFAULT_SLICE))
            for name in reversed(names)
            if name in SUPPORTED_DECODERS and name != "identity"
        ]
        return cls(stages) if stages else None

    def decode(self, raw: bytes) -> Iterator[bytes]:
        return self._feed(0, raw)

    def flush(self) -> Iterator[bytes]:
        for index, (decoder, _) in enumerate(self._stages):
            yield from self._feed(index + 1, decoder.flush())

    def _feed(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                self.decoded += len(data)
                # Cheap: two comparisons per piece of a few MiB at most.
                if self.decoded > MIN_REFUSED_SIZE and self.decoded > MAX_RATIO * self.raw:
                    raise DecompressionBombError(self.decoded, self.raw)
                yield data
            return
        decoder, step = self._stages[index]
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            if index == 0:
                self.raw += len(piece)
            out = decoder.decode(piece)
            if out:
                yield from self._feed(index + 1, out)


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
    return "its body could not be decoded (its Content-Encoding)"
