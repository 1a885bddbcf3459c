"""BodyDecoder (pymedplum/_decoding.py): decodes as httpx does, in bounded steps through every
coding of a chain, and refuses a bomb by its ratio once past the floor."""

from __future__ import annotations

import gzip
import pickle
import random
import zlib

import httpx
import pytest
from httpx._decoders import SUPPORTED_DECODERS

from pymedplum._decoding import (
    MAX_RATIO,
    MIN_REFUSED_SIZE,
    BodyDecoder,
    DecompressionBombError,
    UnsupportedEncodingError,
    accept_encoding,
    why_unread,
)

from .rawserver import gzip_bomb, searchset_json


def decode(encoding: str, wire: bytes, chunk: int = 65536) -> bytes:
    decoder = BodyDecoder.for_headers(httpx.Headers({"Content-Encoding": encoding}))
    assert decoder is not None
    out = bytearray()
    for start in range(0, len(wire), chunk):
        for piece in decoder.decode(wire[start : start + chunk]):
            out += piece
    for piece in decoder.flush():
        out += piece
    return bytes(out)


BODY = searchset_json(200, varied=True)


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),  # zlib-wrapped
        # raw deflate, as some servers send (compressobj: zlib.compress takes wbits on 3.11+ only)
        ("deflate", raw_deflate(BODY)),
        ("GZip , identity", gzip.compress(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),  # applied in that order
    ],
)
def test_a_body_decodes_as_httpx_decodes_it(encoding: str, wire: bytes) -> None:
    expected = httpx.Response(200, headers={"Content-Encoding": encoding}, content=wire).content
    assert decode(encoding, wire) == expected == BODY
    assert decode(encoding, wire, chunk=7) == BODY


@pytest.mark.parametrize("encoding", ["", "identity", " Identity , identity"])
def test_nothing_to_decode_means_no_decoder(encoding: str) -> None:
    assert BodyDecoder.for_headers(httpx.Headers({"Content-Encoding": encoding})) is None
    assert BodyDecoder.for_headers(httpx.Headers()) is None


def test_x_gzip_is_decoded_as_gzip() -> None:
    # RFC 9110 8.4.1.3; httpx itself hands such a body over undecoded.
    assert decode("x-gzip", gzip.compress(BODY)) == BODY


@pytest.mark.parametrize(
    ("encoding", "named", "package"),
    [
        ("br", "br", "brotli"),  # brotli not installed (removed below if it is)
        ("zstd", "zstd", "zstandard"),
        ("compress, x-unknown", "compress", None),
        ("gzip, X-Compress", "compress", None),  # any coding of a chain: nothing decodes right
        ("x-unknown", "x-unknown", None),
        ("<b>" + "x" * 60, None, None),  # not a coding name: not repeated in messages
    ],
)
def test_a_coding_httpx_cannot_decode_is_refused_at_the_first_byte(
    monkeypatch: pytest.MonkeyPatch, encoding: str, named: str | None, package: str | None
) -> None:
    """httpx passes such a body on as it came: compressed bytes read as JSON, or returned by
    download_binary as the file. Refused instead, whatever its size (an empty body is empty)."""
    monkeypatch.delitem(SUPPORTED_DECODERS, "br", raising=False)
    monkeypatch.delitem(SUPPORTED_DECODERS, "zstd", raising=False)
    decoder = BodyDecoder.for_headers(httpx.Headers({"Content-Encoding": encoding}))
    assert decoder is not None
    assert list(decoder.decode(b"")) == [] and list(decoder.flush()) == []
    with pytest.raises(UnsupportedEncodingError) as info:
        list(decoder.decode(b"\x0b\x02\x80{}\x03"))
    exc = info.value
    assert isinstance(exc, httpx.DecodingError)
    assert (exc.encoding, exc.package) == (named, package)
    assert "<b>" not in str(exc)
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.encoding, copy.package, str(copy)) == (exc.encoding, exc.package, str(exc))


def test_why_an_unsupported_coding_was_not_read_names_the_coding_and_its_package() -> None:
    assert why_unread(UnsupportedEncodingError("br")) == (
        "its body is encoded with br, which httpx cannot decode here without the brotli "
        "package: install it, or do not ask for br (the Accept-Encoding of your http_client, "
        "or of headers=)"
    )
    assert why_unread(UnsupportedEncodingError("compress")) == (
        "its body is encoded with compress, which httpx cannot decode here"
    )
    assert why_unread(UnsupportedEncodingError(None)) == (
        "its body is in a Content-Encoding that is no coding name, which httpx cannot decode here"
    )


@pytest.mark.parametrize(
    ("accept_encoding", "asked"),
    [
        ("gzip, deflate", False),  # the SDK's own pool: the server sent br unasked
        ("", False),
        ("gzip, br;q=0", False),
        ("gzip, BR;q=0.000", False),
        ("gzip, deflate, br, zstd", True),  # httpx's default with brotli installed
        ("br;q=0.5", True),
        ("*", True),
        ("gzip;q=1.0, *;q=0.1", True),
    ],
)
def test_whether_the_request_asked_for_the_coding_decides_the_advice(
    accept_encoding: str, asked: bool
) -> None:
    exc = UnsupportedEncodingError("br")
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    exc.request = httpx.Request("GET", "https://x.test/", headers=headers)
    why = why_unread(exc)
    assert why.startswith("its body is encoded with br, which httpx cannot decode here without ")
    if asked:
        assert why.endswith(
            "install it, or do not ask for br (the Accept-Encoding of your http_client, or of "
            "headers=)"
        )
    else:
        said = (
            f"Accept-Encoding is {accept_encoding!r}"
            if accept_encoding
            else "sent no Accept-Encoding"
        )
        assert why.endswith(f"install it (the server sent it unasked: the request's {said})")


def test_a_doubly_gzipped_bomb_is_refused_after_a_few_mib_not_at_its_full_size() -> None:
    """gzip of a gzip bomb: 400 MiB from about 2 KB, a million to one. Each stage is fed in
    slices, so no single call decodes more than a few MiB."""
    wire = gzip.compress(gzip_bomb(), 9)
    assert len(wire) < 10_000
    with pytest.raises(DecompressionBombError) as info:
        decode("gzip, gzip", wire)
    assert MIN_REFUSED_SIZE < info.value.decoded_bytes <= MIN_REFUSED_SIZE + 8 * 2**20
    assert info.value.decoded_bytes > MAX_RATIO * info.value.compressed_bytes
    assert isinstance(info.value, httpx.DecodingError)
    copy = pickle.loads(pickle.dumps(info.value))  # hooks may ship it to another process
    assert (copy.decoded_bytes, str(copy)) == (info.value.decoded_bytes, str(info.value))


def test_a_small_body_is_never_refused_whatever_its_ratio() -> None:
    body = bytes(MIN_REFUSED_SIZE)  # exactly the floor: 1,028 to 1
    assert decode("gzip", gzip.compress(body, 9)) == body


def test_accept_encoding_asks_for_gzip_and_deflate_only() -> None:
    everything = ["identity", "gzip", "deflate", "br", "zstd"]
    assert accept_encoding(everything) == "gzip, deflate"
    assert accept_encoding(["identity", "gzip", "deflate"]) == "gzip, deflate"


# --- br where the brotli package bounds a call's output (brotli / brotlicffi 1.2+) -------------
# brotli is not a dependency (and not in the development venv): these tests give httpx's own
# BrotliDecoder a stand-in module whose "brotli" is zlib, with brotli 1.2's streaming API:
# process(data, output_buffer_limit=) and can_accept_more_data(), which refuses input while
# earlier input is not taken in, and may hold output back with all input taken in.


class _FakeBrotliError(Exception):
    pass


class _BoundedDecompressor:
    calls: list[tuple[int, int | None, int]]

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj()
        self._tail = b""
        self.calls = []
        _BoundedDecompressor.made.append(self)

    made: list[_BoundedDecompressor] = []  # noqa: RUF012

    def process(self, data: bytes, output_buffer_limit: int | None = None) -> bytes:
        if data and self._tail:
            raise _FakeBrotliError("called with data when 'can_accept_more_data()' is False")
        try:
            out = self._zlib.decompress(self._tail + data, output_buffer_limit or 0)
        except zlib.error as exc:
            raise _FakeBrotliError(str(exc)) from exc
        self._tail = self._zlib.unconsumed_tail
        self.calls.append((len(data), output_buffer_limit, len(out)))
        return out

    def can_accept_more_data(self) -> bool:
        return not self._tail


class _UnboundedDecompressor:
    """brotli before 1.2: process(data) only, no limit."""

    inputs: list[int] = []  # noqa: RUF012

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj()

    def process(self, data: bytes) -> bytes:
        _UnboundedDecompressor.inputs.append(len(data))
        return self._zlib.decompress(data)


def _fake_brotli(monkeypatch: pytest.MonkeyPatch, decompressor: type) -> None:
    import types

    import httpx._decoders

    module = types.SimpleNamespace(Decompressor=decompressor, error=_FakeBrotliError)
    monkeypatch.setattr(httpx._decoders, "brotli", module, raising=False)
    monkeypatch.setitem(SUPPORTED_DECODERS, "br", httpx._decoders.BrotliDecoder)
    monkeypatch.setattr(_BoundedDecompressor, "made", [])
    monkeypatch.setattr(_UnboundedDecompressor, "inputs", [])


INCOMPRESSIBLE = random.Random(5).randbytes(1 << 20)


def test_br_takes_whole_chunks_where_brotli_bounds_its_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """16-byte slices cost a Python call per 16 bytes: a 30 MB incompressible Binary took 1.1 s
    to decode instead of httpx's 5 ms (brotli 1.2.1). With the package's own output limit each
    network chunk is one call, and the output comes 1 MiB at a time."""
    _fake_brotli(monkeypatch, _BoundedDecompressor)
    assert decode("br", zlib.compress(INCOMPRESSIBLE)) == INCOMPRESSIBLE
    (decompressor,) = _BoundedDecompressor.made
    fed = [taken for taken, _, _ in decompressor.calls if taken]
    assert fed == [65536] * 16 + [len(zlib.compress(INCOMPRESSIBLE)) - 16 * 65536]
    assert len(decompressor.calls) <= 3 * len(fed) + 2
    assert {limit for _, limit, _ in decompressor.calls} == {1 << 20}


def test_a_br_bomb_is_refused_a_bounded_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_brotli(monkeypatch, _BoundedDecompressor)
    wire = zlib.compress(bytes(MIN_REFUSED_SIZE + 64 * 2**20), 9)
    with pytest.raises(DecompressionBombError) as info:
        decode("br", wire)
    assert MIN_REFUSED_SIZE < info.value.decoded_bytes <= MIN_REFUSED_SIZE + 2 * 2**20
    (decompressor,) = _BoundedDecompressor.made
    assert max(out for _, _, out in decompressor.calls) <= 1 << 20
    # The first 64 KiB chunk decodes to about 66 MB: refused while it was being drained, the
    # rest of the bomb (130 KB in all) never handed to the decoder.
    assert len(wire) > 65536
    assert [taken for taken, _, _ in decompressor.calls if taken] == [65536]


def test_br_output_held_back_after_the_last_chunk_comes_out_at_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_brotli(monkeypatch, _BoundedDecompressor)
    body = bytes(5 * 2**20)  # 5 MiB of zeros in one small chunk: five pieces of 1 MiB
    decoder = BodyDecoder.for_headers(httpx.Headers({"Content-Encoding": "br"}))
    assert decoder is not None
    pieces = [*decoder.decode(zlib.compress(body)), *decoder.flush()]
    assert b"".join(pieces) == body
    assert max(map(len, pieces)) <= 1 << 20


def test_a_broken_br_body_is_a_decoding_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_brotli(monkeypatch, _BoundedDecompressor)
    with pytest.raises(httpx.DecodingError, match="incorrect header check"):
        decode("br", b"not brotli at all")


def test_br_without_an_output_limit_is_still_fed_16_bytes_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """brotli before 1.2 (and brotlicffi before 1.2) cannot bound a call's output: 16 bytes of
    brotli can decode to 16 MiB, so the input stays sliced."""
    _fake_brotli(monkeypatch, _UnboundedDecompressor)
    body = INCOMPRESSIBLE[:100_000]
    assert decode("br", zlib.compress(body)) == body
    assert max(_UnboundedDecompressor.inputs) == 16
