"""Reference images: what a member's attachment really is, whether we will send it, and how.

The declared content type and the filename are the member's word; the bytes are the truth. We
sniff the type from magic bytes, refuse anything that is not PNG, JPEG, WebP or GIF, refuse files
that are empty, too big or visibly cut off, and encode what passes as a full data URI (the one
form every Midjourney-proxy accepts, mj-api.md §6). Pure stdlib: no Pillow, no I/O.
"""

from __future__ import annotations

import base64
import re
import struct

from bot.core.errors import DownloadError, ImageRejected
from bot.core.jobs import ReferenceImage
from bot.core.messages import Code, Message, Option, msg

__all__ = [
    "ACCEPTED_TYPES",
    "DEFAULT_MAX_PIXELS",
    "NOT_DOWNLOADED",
    "AttachmentFault",
    "about",
    "check_reference",
    "image_size",
    "pixel_problem",
    "safe_filename",
    "sniff",
    "to_data_uri",
    "too_big",
]

#: MAX_REFERENCE_MEGAPIXELS' default: 50 million pixels (e.g. 7071×7071).
DEFAULT_MAX_PIXELS = 50_000_000

#: The MIME types we send, in the order members read them in messages.
ACCEPTED_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")

# Every signature whose prefix alone tells us "this was meant to be an image but was cut".
_SIGNATURE_PREFIXES = (_PNG_SIGNATURE, _JPEG_SOI, *_GIF_SIGNATURES, b"RIFF")

_MIB = 1024 * 1024
_MAX_NAME = 64
# Control characters and Unicode bidi overrides: they could garble or reorder the message.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes declare by their magic number, or None for anything else.

    Only the signature is read; whether the rest of the file is whole is `check_reference`'s job.
    """
    if data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if data.startswith(_JPEG_SOI):
        return "image/jpeg"
    if data[:6] in _GIF_SIGNATURES:
        return "image/gif"
    if len(data) >= 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp" if data[12:16] in _WEBP_CHUNKS else None
    return None


def _looks_cut_signature(data: bytes) -> bool:
    """True when the bytes are a (too short) beginning of an image signature."""
    if len(data) >= 16:
        return False
    for sig in _SIGNATURE_PREFIXES:
        n = min(len(sig), len(data))
        if data[:n] == sig[:n]:
            # A short RIFF file is only a cut WebP if what we have agrees with "RIFF....WEBP".
            if sig == b"RIFF" and len(data) > 8 and not b"WEBP".startswith(data[8:12]):
                continue
            return True
    return False


def _is_complete(mime: str, data: bytes) -> bool:
    """A cheap structural check that the file was not cut off in transit.

    Not a decoder: it looks only at the parts a truncated upload is sure to lack (PNG's IHDR
    and IEND chunks, JPEG's end-of-image marker, WebP's declared RIFF length, GIF's screen
    descriptor and trailer). Trailing bytes after the end marker are allowed; some tools add them.
    """
    if mime == "image/png":
        return data[12:16] == b"IHDR" and _png_reaches_iend(data)
    if mime == "image/jpeg":
        return len(data) >= 4 and data.find(b"\xff\xd9", 3) != -1
    if mime == "image/webp":
        riff_size: int = struct.unpack_from("<I", data, 4)[0]
        # The RIFF size counts everything after its own 8-byte header; odd sizes are padded.
        return riff_size >= 8 and len(data) >= 8 + riff_size
    if mime == "image/gif":
        # header (6) + logical screen descriptor (7), then blocks ending with the 0x3B trailer.
        return len(data) >= 14 and data.rstrip(b"\x00").endswith(b";")
    return False


def _png_reaches_iend(data: bytes) -> bool:
    """Walk the PNG's chunks (length, type, data, CRC) to a whole IEND chunk.

    Searching for the bytes "IEND" is not enough: compressed pixel data can contain them.
    """
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            return False
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = end
    return False


def safe_filename(filename: str) -> str:
    """A filename fit to quote inside `code` in a member-facing message.

    Strips backticks (they would close the code span and let the rest render as markdown),
    control and bidi characters, and any directory part; breaks `@` so that even outside a code
    span nothing can read as a mention; caps the length.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_CHARS.sub("", name.replace("`", ""))
    name = name.replace("@", "@\u200b").strip()
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 1].rstrip() + "…"
    return name or "attachment"


def _megabytes(size: int) -> str:
    """12.3, 10, 0.5: one decimal, without a useless `.0`."""
    text = f"{size / _MIB:.1f}"
    return text[:-2] if text.endswith(".0") else text


def about(option: str, filename: str, problem: Message) -> Message:
    """`problem` (a sentence with `{option}` and `{file}` placeholders) naming the option and
    the file: `image2: `cat.png` is …`."""
    named = (("option", Option(option)), ("file", Code(safe_filename(filename))))
    return Message(problem.text, (*named, *problem.params), problem.plural)


def too_big(size: int, limit: int) -> Message:
    """A file over the size limit (the problem, to name with `about`)."""
    return msg(
        "{option}: {file} is {size} MB; the limit is {limit} MB.",
        size=_megabytes(size),
        limit=_megabytes(limit),
    )


#: Why an attachment is refused, before the option and file are known (see `about`).
NOT_DOWNLOADED = msg("{option}: {file} could not be downloaded. Please upload it again.")
_EMPTY = msg("{option}: {file} is empty. Please upload it again.")
_CUT = msg("{option}: {file} is incomplete (the file was cut off). Please upload it again.")
_NOT_IMAGE = msg("{option}: {file} is not a PNG, JPEG, WebP or GIF image.")
_NO_SIZE = msg(
    "{option}: {file} has no readable image size (the file may be damaged). Please upload it again."
)


def check_reference(option: str, filename: str, data: bytes, *, max_bytes: int) -> ReferenceImage:
    """Accept an attachment as a reference image, or raise `ImageRejected` naming option and file.

    Checks, in order: not empty; not over `max_bytes`; a PNG, JPEG, WebP or GIF by its bytes
    (never by its name or declared type); not cut off; a size readable from its header (the
    pixel cap itself is applied while downloading, see `pixel_problem`).
    """
    if not data:
        raise ImageRejected(f"{option}: empty file", message=about(option, filename, _EMPTY))
    if len(data) > max_bytes:
        raise ImageRejected(
            f"{option}: {len(data)} bytes > {max_bytes}",
            message=about(option, filename, too_big(len(data), max_bytes)),
        )
    mime = sniff(data)
    if mime is None:
        if _looks_cut_signature(data):
            raise ImageRejected(
                f"{option}: {len(data)} bytes, cut inside the signature",
                message=about(option, filename, _CUT),
            )
        raise ImageRejected(
            f"{option}: unrecognised signature {data[:8].hex()}",
            message=about(option, filename, _NOT_IMAGE),
        )
    if not _is_complete(mime, data):
        raise ImageRejected(
            f"{option}: {mime} of {len(data)} bytes is truncated",
            message=about(option, filename, _CUT),
        )
    if image_size(data) is None:  # whole, but no size we can read: not an image we can vouch for
        raise ImageRejected(
            f"{option}: {mime} without a readable size", message=about(option, filename, _NO_SIZE)
        )
    return ReferenceImage(option=option, filename=filename, content_type=mime, data=data)


class AttachmentFault(DownloadError):
    """An attachment that could not be used, said without its name: `problem` is a sentence
    with `{option}` and `{file}` placeholders ("{option}: {file} is not on Discord's CDN …")
    that the caller fills with the option and the file it knows (`named`)."""

    def __init__(self, detail: str, *, problem: Message) -> None:
        super().__init__(detail, message=about("attachment", "attachment", problem))
        self.problem = problem

    def named(self, option: str, filename: str) -> DownloadError:
        """The same failure, naming the option and the file for the member."""
        return DownloadError(
            f"{option}: {self.detail}", message=about(option, filename, self.problem)
        )


# JPEG start-of-frame markers (they carry the size): C0–CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0–7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the file's header declares them, or None when it can't be read.

    Only headers are read (PNG's IHDR, GIF's logical screen, WebP's VP8/VP8L/VP8X chunk,
    JPEG's start-of-frame segment); nothing is decoded, so a decompression bomb costs nothing.
    """
    mime = sniff(data)
    if mime == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack_from(">II", data, 16)
        return int(width), int(height)
    if mime == "image/gif" and len(data) >= 10:
        width, height = struct.unpack_from("<HH", data, 6)
        return int(width), int(height)
    if mime == "image/webp":
        return _webp_size(data)
    if mime == "image/jpeg":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:  # canvas size minus one, 24 bits each
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)  # 14 bits each, 2 bits of scale
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")  # 14 bits width-1, 14 bits height-1
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return int(width), int(height)
        pos += 2 + length
    return None


def pixel_problem(data: bytes, max_pixels: int) -> Message | None:
    """Why the image's declared dimensions are refused (a problem to name with `about`), or
    None when they are within `max_pixels`. Unreadable dimensions are refused too: they are
    what a crafted file would hide behind."""
    size = image_size(data)
    if size is None or 0 in size:
        return _NO_SIZE
    width, height = size
    if width * height > max_pixels:
        return msg(
            "{option}: {file} is {width}×{height} pixels ({megapixels} megapixels); "
            "the limit is {limit} megapixels.",
            width=width,
            height=height,
            megapixels=_megapixels(width * height),
            limit=_megapixels(max_pixels),
        )
    return None


def _megapixels(pixels: int) -> str:
    text = f"{pixels / 1_000_000:.1f}"
    return text[:-2] if text.endswith(".0") else text


def to_data_uri(image: ReferenceImage) -> str:
    """The full data URI the API expects in `base64Array`: `data:image/png;base64,…`."""
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode('ascii')}"
