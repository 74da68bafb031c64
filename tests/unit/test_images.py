"""Reference images: sniffing, size and truncation rules, safe names, data URIs."""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.core.errors import ImageRejected
from bot.core.images import (
    ACCEPTED_TYPES,
    check_reference,
    safe_filename,
    sniff,
    to_data_uri,
)
from bot.core.jobs import ReferenceImage

MB = 1024 * 1024
LIMIT = 10 * MB


# --- tiny, structurally valid images built by hand (no Pillow in core tests) -----------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(payload: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1×1 greyscale
    idat = zlib.compress(b"\x00\x00")
    extra = _png_chunk(b"tEXt", b"c\x00" + payload) if payload else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def make_jpeg(payload: bytes = b"") -> bytes:
    # 0xFF is a marker prefix in JPEG; keep the comment body free of it so FFD9 appears only once.
    body = payload.replace(b"\xff", b"\x00")
    com = b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body
    sof0 = b"\xff\xc0\x00\x0b\x08\x00\x01\x00\x01\x01\x01\x11\x00"  # 1×1, one component
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + sof0
        + com
        + b"\xff\xd9"
    )


def make_webp(payload: bytes = b"") -> bytes:
    vp8l = b"\x2f" + b"\x00" * 4 + payload
    chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l + (b"\x00" if len(vp8l) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def make_gif(payload: bytes = b"") -> bytes:
    body = payload.replace(b";", b"!")
    return b"GIF89a" + b"\x01\x00\x01\x00\x00\x00\x00" + body + b";"


MAKERS = {
    "image/png": make_png,
    "image/jpeg": make_jpeg,
    "image/webp": make_webp,
    "image/gif": make_gif,
}

images = st.tuples(st.sampled_from(sorted(MAKERS)), st.binary(max_size=300)).map(
    lambda t: (t[0], MAKERS[t[0]](t[1]))
)


# --- sniff -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mime", sorted(MAKERS))
def test_sniff_recognises_each_accepted_type(mime: str) -> None:
    assert sniff(MAKERS[mime]()) == mime


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"PK\x03\x04",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"RIFF\x24\x00\x00\x00WEBPJUNK",
        b"\x00\x00\x00\x18ftypheic",
    ],
)
def test_sniff_returns_none_for_other_files(data: bytes) -> None:
    assert sniff(data) is None


@given(st.binary(max_size=256))
def test_sniff_never_crashes_and_only_names_accepted_types(data: bytes) -> None:
    assert sniff(data) in (None, *ACCEPTED_TYPES)


@pytest.mark.parametrize(
    ("fmt", "mode", "mime"),
    [
        ("PNG", "RGBA", "image/png"),
        ("JPEG", "RGB", "image/jpeg"),
        ("WEBP", "RGB", "image/webp"),
        ("GIF", "P", "image/gif"),
    ],
)
def test_files_written_by_a_real_encoder_are_accepted(fmt: str, mode: str, mime: str) -> None:
    from PIL import Image  # the tests may use Pillow; bot.core may not

    buf = io.BytesIO()
    Image.new(mode, (37, 21)).save(buf, fmt)
    assert check_reference("image1", "a", buf.getvalue(), max_bytes=LIMIT).content_type == mime


# --- check_reference -------------------------------------------------------------------------


@given(images)
def test_valid_images_are_accepted_with_sniffed_type(item: tuple[str, bytes]) -> None:
    mime, data = item
    ref = check_reference("image1", "whatever.bin", data, max_bytes=LIMIT)
    assert ref == ReferenceImage("image1", "whatever.bin", mime, data)


@given(st.binary(max_size=512), st.text(max_size=80))
@example(b"\x89PNG\r\n\x1a\n", "x.png")
@example(b"RIFF\xff\xff\xff\xffWEBPVP8 ", "x.webp")
def test_random_bytes_never_crash(data: bytes, name: str) -> None:
    try:
        ref = check_reference("image3", name, data, max_bytes=LIMIT)
    except ImageRejected as exc:
        assert exc.member_message.startswith("image3: `")
    else:
        assert ref.content_type == sniff(data)
        assert ref.content_type in ACCEPTED_TYPES


def test_empty_file_is_refused_by_name() -> None:
    with pytest.raises(ImageRejected) as err:
        check_reference("image1", "cat.png", b"", max_bytes=LIMIT)
    assert err.value.member_message == "image1: `cat.png` is empty. Please upload it again."


def test_pdf_named_png_is_refused_as_not_an_image() -> None:
    with pytest.raises(ImageRejected) as err:
        check_reference("image2", "notes.png", b"%PDF-1.4\n" + b"x" * 100, max_bytes=LIMIT)
    assert err.value.member_message == "image2: `notes.png` is not a PNG, JPEG, WebP or GIF image."


def test_pdf_is_refused_with_the_product_sentence() -> None:
    with pytest.raises(ImageRejected) as err:
        check_reference("image2", "notes.pdf", b"%PDF-1.4\n", max_bytes=LIMIT)
    assert err.value.member_message == "image2: `notes.pdf` is not a PNG, JPEG, WebP or GIF image."


def test_oversized_file_names_its_size_and_the_limit() -> None:
    data = make_png() + b"\x00" * int(12.3 * MB)
    with pytest.raises(ImageRejected) as err:
        check_reference("image1", "big.png", data, max_bytes=LIMIT)
    assert err.value.member_message == "image1: `big.png` is 12.3 MB; the limit is 10 MB."


@given(extra=st.integers(min_value=1, max_value=3 * MB), limit=st.integers(1, 20 * MB))
def test_anything_over_the_limit_is_refused(extra: int, limit: int) -> None:
    data = b"\x00" * (limit + extra)
    with pytest.raises(ImageRejected, match="bytes >"):
        check_reference("image1", "a.png", data, max_bytes=limit)


def test_exactly_the_limit_is_accepted() -> None:
    data = make_png()
    assert check_reference("image1", "a.png", data, max_bytes=len(data)).size == len(data)


@given(st.data())
def test_a_png_cut_anywhere_before_its_end_chunk_is_refused(data: st.DataObject) -> None:
    png = make_png(data.draw(st.binary(max_size=200)))
    cut = data.draw(st.integers(min_value=1, max_value=len(png) - 9))
    with pytest.raises(ImageRejected) as err:
        check_reference("image1", "cut.png", png[:cut], max_bytes=LIMIT)
    assert "incomplete" in err.value.member_message


def test_a_png_whose_header_is_cut_is_called_incomplete_not_foreign() -> None:
    with pytest.raises(ImageRejected) as err:
        check_reference("image1", "cut.png", b"\x89PNG\r", max_bytes=LIMIT)
    assert err.value.member_message == (
        "image1: `cut.png` is incomplete (the file was cut off). Please upload it again."
    )


@given(st.data())
def test_a_webp_cut_anywhere_is_refused(data: st.DataObject) -> None:
    webp = make_webp(data.draw(st.binary(max_size=200)))
    cut = data.draw(st.integers(min_value=1, max_value=len(webp) - 1))
    with pytest.raises(ImageRejected):
        check_reference("image1", "cut.webp", webp[:cut], max_bytes=LIMIT)


@pytest.mark.parametrize("mime", ["image/jpeg", "image/gif"])
def test_jpeg_and_gif_without_their_end_marker_are_refused(mime: str) -> None:
    whole = MAKERS[mime](b"some pixels")
    with pytest.raises(ImageRejected, match="truncated"):
        check_reference("image1", "cut", whole[:-2], max_bytes=LIMIT)


# --- filenames in member messages ------------------------------------------------------------


@given(st.text(max_size=300))
@example("``` @everyone <@&123> **bold** ```")
@example("../../etc/passwd`")
@example("\u202egnp.exe")
def test_filenames_cannot_escape_the_code_span_or_mention(name: str) -> None:
    with pytest.raises(ImageRejected) as err:
        check_reference("image2", name, b"not an image at all", max_bytes=LIMIT)
    message = err.value.member_message
    assert message.count("`") == 2
    shown = re.fullmatch(r"image2: `(.*)` is not a PNG, JPEG, WebP or GIF image\.", message, re.S)
    assert shown is not None
    assert 0 < len(shown.group(1)) <= 64
    assert "@everyone" not in message and "\n" not in message and "\u202e" not in message


def test_safe_filename_keeps_ordinary_names_and_drops_directories() -> None:
    assert safe_filename("holiday photo (1).JPG") == "holiday photo (1).JPG"
    assert safe_filename("C:\\Users\\me\\cat.png") == "cat.png"
    assert safe_filename("``") == "attachment"
    assert safe_filename("a" * 100).endswith("…")


# --- data URIs -------------------------------------------------------------------------------


@given(images, st.sampled_from(["image1", "image2", "image3"]))
def test_data_uri_round_trips(item: tuple[str, bytes], option: str) -> None:
    mime, data = item
    ref = check_reference(option, "f", data, max_bytes=LIMIT)
    uri = to_data_uri(ref)
    head, _, payload = uri.partition(",")
    assert head == f"data:{mime};base64"
    assert base64.b64decode(payload, validate=True) == data
    # Java proxies require a lower-case type/subtype of [a-z0-9-] (mj-api.md §6).
    assert re.fullmatch(r"data:[a-z\-0-9]+/[a-z\-0-9]+;base64,[A-Za-z0-9+/]*={0,2}", uri)


def test_a_cut_png_whose_pixels_contain_the_bytes_iend_is_still_incomplete() -> None:
    png = make_png(b"IEND" * 8)
    with pytest.raises(ImageRejected) as err:
        check_reference("image1", "cut.png", png[:47], max_bytes=LIMIT)
    assert "incomplete" in err.value.member_message
