"""BodyDecoder (pymedplum/_decoding.py): decodes as httpx does, in bounded steps through every
coding of a chain, and refuses a bomb by its ratio once past the floor."""

from __future__ import annotations

import gzip
import pickle
import zlib

import httpx
import pytest

from pymedplum._decoding import (
    MAX_RATIO,
    MIN_REFUSED_SIZE,
    BodyDecoder,
    DecompressionBombError,
    accept_encoding,
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


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),  # zlib-wrapped
        ("deflate", zlib.compress(BODY, wbits=-15)),  # raw deflate, as some servers send
        ("GZip , identity", gzip.compress(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),  # applied in that order
    ],
)
def test_a_body_decodes_as_httpx_decodes_it(encoding: str, wire: bytes) -> None:
    expected = httpx.Response(200, headers={"Content-Encoding": encoding}, content=wire).content
    assert decode(encoding, wire) == expected == BODY
    assert decode(encoding, wire, chunk=7) == BODY


@pytest.mark.parametrize("encoding", ["", "identity", "compress, x-unknown"])
def test_nothing_httpx_decodes_means_no_decoder(encoding: str) -> None:
    assert BodyDecoder.for_headers(httpx.Headers({"Content-Encoding": encoding})) is None


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
