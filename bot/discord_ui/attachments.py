"""Members' attachments → reference images: every failure names the option and the file.

The declared size is checked before anything is downloaded (the member's client can lie in
either direction: a declared size over the limit is refused at once, a real size over it is
cut off while streaming); the download refuses anything off Discord's CDN, redirects, bad
statuses, slow transfers and oversized pixel dimensions; the bytes then decide the type.
"""

from __future__ import annotations

import asyncio

import discord

from bot.core.errors import DownloadError, ImageRejected
from bot.core.images import AttachmentFault, check_reference, safe_filename
from bot.core.jobs import ReferenceImage
from bot.core.ports import ImageFiles

_MIB = 1024 * 1024


def _mb(size: int) -> str:
    text = f"{size / _MIB:.1f}"
    return text[:-2] if text.endswith(".0") else text


async def read_images(
    files: ImageFiles, attachments: list[tuple[str, discord.Attachment]], max_bytes: int
) -> list[ReferenceImage]:
    """Download and check every attachment, in option order; refuse the first bad one."""
    for option, attachment in attachments:
        if attachment.size > max_bytes:
            raise ImageRejected(
                f"{option}: declared {attachment.size} bytes > {max_bytes}",
                member_message=f"{option}: `{safe_filename(attachment.filename)}` is "
                f"{_mb(attachment.size)} MB; the limit is {_mb(max_bytes)} MB.",
            )
    results = await asyncio.gather(
        *(files.fetch_reference(a.url, max_bytes) for _, a in attachments),
        return_exceptions=True,
    )
    images = []
    for (option, attachment), result in zip(attachments, results, strict=True):
        if isinstance(result, AttachmentFault):
            raise result.named(option, attachment.filename)
        if isinstance(result, DownloadError):
            raise DownloadError(
                f"{option}: {result.detail}",
                member_message=f"{option}: `{safe_filename(attachment.filename)}` "
                "could not be downloaded. Please upload it again.",
            )
        if isinstance(result, BaseException):
            raise result
        images.append(check_reference(option, attachment.filename, result, max_bytes=max_bytes))
    return images
