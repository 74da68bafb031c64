"""Pixel dimensions read from image headers (PNG, JPEG, WebP, GIF) and the megapixel cap."""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.core.images import about, image_size, pixel_problem

sizes16 = st.integers(1, 65535)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def gif_header(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg_header(width: int, height: int, segments: list[tuple[int, bytes]]) -> bytes:
    """SOI, any APPn/COM segments (bodies may hold 0xFF: they are skipped by length), SOF."""
    out = b"\xff\xd8"
    for marker, body in segments:
        out += bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
    sof = b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"
    return out + b"\xff\xc2" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + bits.to_bytes(4, "little")
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body + b"\x00"
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_png_size_is_read_from_ihdr(width: int, height: int) -> None:
    assert image_size(png_header(width, height)) == (width, height)


@given(sizes16, sizes16)
def test_gif_size_is_the_logical_screen(width: int, height: int) -> None:
    assert image_size(gif_header(width, height)) == (width, height)


@given(
    sizes16,
    sizes16,
    st.lists(
        st.tuples(st.sampled_from([0xE0, 0xE1, 0xE2, 0xED, 0xFE, 0xDB]), st.binary(max_size=300)),
        max_size=5,
    ),
)
def test_jpeg_size_is_found_past_any_segments(
    width: int, height: int, segments: list[tuple[int, bytes]]
) -> None:
    assert image_size(jpeg_header(width, height, segments)) == (width, height)


@given(st.integers(1, 2**24), st.integers(1, 2**24))
def test_webp_extended_canvas_size(width: int, height: int) -> None:
    assert image_size(webp_vp8x(width, height)) == (width, height)


@given(st.integers(1, 16384), st.integers(1, 16384))
def test_webp_lossless_size(width: int, height: int) -> None:
    assert image_size(webp_vp8l(width, height)) == (width, height)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 64),
    st.integers(1, 64),
    st.sampled_from(
        [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("WEBP", {}), ("WEBP", {"lossless": True})]
    ),
)
def test_sizes_agree_with_a_real_encoder(
    width: int, height: int, fmt: tuple[str, dict[str, bool]]
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 99, 199)).save(out, format=fmt[0], **fmt[1])
    assert image_size(out.getvalue()) == (width, height)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_size_or_none_never_an_error(data: bytes) -> None:
    size = image_size(data)
    assert size is None or (isinstance(size[0], int) and isinstance(size[1], int))


@given(sizes16, sizes16, st.data())
def test_a_cut_header_gives_none_or_the_true_size(
    width: int, height: int, data: st.DataObject
) -> None:
    whole = jpeg_header(width, height, [(0xE0, b"JFIF\x00" * 3)])
    cut = whole[: data.draw(st.integers(0, len(whole)))]
    assert image_size(cut) in (None, (width, height))


@given(sizes16, sizes16, st.integers(1, 10**9))
def test_the_cap_refuses_exactly_the_images_over_it(width: int, height: int, cap: int) -> None:
    problem = pixel_problem(png_header(width, height), cap)
    if width * height > cap:
        assert problem is not None
        assert f"{width}×{height} pixels" in about("image1", "x.png", problem).plain()
    else:
        assert problem is None


def test_a_header_without_a_size_is_refused() -> None:
    assert pixel_problem(png_header(0, 0), 50_000_000) is not None
    assert pixel_problem(b"\xff\xd8\xff\xd9", 50_000_000) is not None
