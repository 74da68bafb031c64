"""Message composition as Discord does it: validation, attachments, embeds, components, mentions.

``compose_message`` turns a create/edit body (JSON or multipart ``payload_json`` + files) into
the stored message payload. The rules modelled here are the ones the bot depends on:

* uploads are stored under the CDN path and ``attachment://name`` in embeds is rewritten to the
  attachment's URL (the attachment stays listed, as on Discord);
* every component gets a numeric ``id`` (Discord numbers them; the spec requires it);
* ``mentions`` / ``mention_roles`` / ``mention_everyone`` are computed from the content
  *filtered by allowed_mentions* and the author's MENTION_EVERYONE permission — that is what
  decides who is pinged, so a prompt containing ``@everyone`` sent with ``parse: []`` pings
  nobody;
* a file over the server's upload limit (checked per file) → 413 code 40005; an empty
  message → 400 code 50006; bad fields → 50035.
"""

from __future__ import annotations

import copy
import io
import mimetypes
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.sandbox.discord.errors import DiscordHTTPError, entity_too_large, invalid_form
from bot.sandbox.discord.models import FLAG_EPHEMERAL, PERMISSIONS, iso_now

if TYPE_CHECKING:
    from bot.sandbox.discord.emulator import DiscordEmulator

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)\b")
MAX_CONTENT = 2000
MAX_EMBEDS = 10
# Flags a client may set when creating a message (SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS,
# IS_VOICE_MESSAGE, IS_COMPONENTS_V2); EPHEMERAL only through interactions.
CREATE_FLAGS = (1 << 2) | (1 << 12) | (1 << 13) | (1 << 15)


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    content_type: str | None
    data: bytes

    @property
    def index(self) -> int | None:
        match = re.fullmatch(r"files\[(\d+)\]", self.field)
        return int(match.group(1)) if match else None


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:  # not an image, or Pillow missing: Discord then omits width/height
        return None


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_content_type(filename: str, data: bytes, declared: str | None) -> str | None:
    """Discord derives content_type itself; discord.py declares every upload octet-stream."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed
    return declared if declared and declared != "application/octet-stream" else None


def make_attachment(
    emu: DiscordEmulator,
    *,
    channel_id: int,
    filename: str,
    data: bytes,
    content_type: str | None,
    ephemeral: bool,
    description: str | None = None,
) -> dict[str, Any]:
    """Store bytes on the emulator's CDN and return Discord's attachment object for them."""
    att_id = emu.snowflakes.next()
    prefix = "ephemeral-attachments" if ephemeral else "attachments"
    path = f"/{prefix}/{channel_id}/{att_id}/{quote(filename)}"
    # Discord's CDN URLs are signed (ex/is/hm); code that derives names from URLs must cope.
    now = int(time.time())
    query = f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
    url = emu.base_url + path + query
    att: dict[str, Any] = {
        "id": str(att_id),
        "filename": filename,
        "size": len(data),
        "url": url,
        "proxy_url": url.replace(emu.base_url, emu.base_url + "/media", 1),
    }
    content_type = sniff_content_type(filename, data, content_type)
    emu.cdn[f"/{prefix}/{channel_id}/{att_id}/{filename}"] = (data, content_type)
    if content_type:
        att["content_type"] = content_type
    size = image_size(data) if (content_type or "").startswith("image/") else None
    if size is not None:
        att["width"], att["height"] = size
    if description:
        att["description"] = description
    if ephemeral:
        att["ephemeral"] = True
    return att


def _number_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(components)
    used: set[int] = set()

    def walk_used(items: list[dict[str, Any]]) -> None:
        for c in items:
            if isinstance(c.get("id"), int):
                used.add(c["id"])
            walk_used(c.get("components") or [])
            for key in ("component", "accessory"):
                if isinstance(c.get(key), dict):
                    walk_used([c[key]])

    counter = iter(i for i in range(1, 10_000) if i not in used)

    def walk(items: list[dict[str, Any]]) -> None:
        for c in items:
            for key in [k for k, v in c.items() if v is None]:
                del c[key]  # Discord omits nulls in component responses
            if not isinstance(c.get("id"), int):
                c["id"] = next(counter)
            emoji = c.get("emoji")
            if isinstance(emoji, dict):
                # A unicode emoji comes back as just its name; a custom one keeps id and animated.
                c["emoji"] = (
                    {"name": emoji.get("name", "")}
                    if not emoji.get("id")
                    else {k: v for k, v in emoji.items() if v is not None}
                )
            walk(c.get("components") or [])
            for key in ("component", "accessory"):
                if isinstance(c.get(key), dict):
                    walk([c[key]])

    walk_used(out)
    walk(out)
    return out


def _rewrite_embeds(
    embeds: list[dict[str, Any]], by_name: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for embed in copy.deepcopy(embeds):
        embed.setdefault("type", "rich")
        embed.setdefault("content_scan_version", 0)
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if not isinstance(media, dict) or not media.get("url"):
                continue
            url = media["url"]
            if url.startswith("attachment://"):
                att = by_name.get(url.removeprefix("attachment://"))
                if att is None:
                    # Discord drops a media reference to an attachment that was not uploaded.
                    del embed[key]
                    continue
                media["url"] = att["url"]
                media["proxy_url"] = att["proxy_url"]
                if "width" in att:
                    media["width"], media["height"] = att["width"], att["height"]
                if "content_type" in att:
                    media["content_type"] = att["content_type"]
            else:
                media.setdefault("proxy_url", url)
            media.setdefault("flags", 0)
        for key, field in (("author", "icon_url"), ("footer", "icon_url")):
            part = embed.get(key)
            if isinstance(part, dict) and str(part.get(field, "")).startswith("attachment://"):
                att = by_name.get(part[field].removeprefix("attachment://"))
                if att is not None:
                    part[field] = att["url"]
                    part["proxy_" + field] = att["proxy_url"]
        out.append(embed)
    return out


def compute_mentions(
    emu: DiscordEmulator,
    *,
    content: str,
    allowed: dict[str, Any] | None,
    author_id: int,
    channel_id: int,
    replied_author_id: int | None = None,
) -> tuple[list[dict[str, Any]], list[str], bool]:
    """(mentions, mention_roles, mention_everyone) as Discord decides who gets pinged."""
    if allowed is None:
        parse = {"users", "roles", "everyone"}
        users: set[str] = set()
        roles: set[str] = set()
        replied_user = True
    else:
        parse = set(allowed.get("parse") or [])
        users = {str(u) for u in allowed.get("users") or []}
        roles = {str(r) for r in allowed.get("roles") or []}
        replied_user = bool(allowed.get("replied_user", False))
        for kind, ids in (("users", users), ("roles", roles)):
            if kind in parse and ids:
                raise invalid_form(
                    "allowed_mentions",
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
    can_everyone = emu.has_permission(author_id, channel_id, PERMISSIONS["MENTION_EVERYONE"])
    mentioned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for uid in USER_MENTION.findall(content):
        if uid in seen or ("users" not in parse and uid not in users):
            continue
        user = emu.user_payload(int(uid))
        if user is not None:
            seen.add(uid)
            mentioned.append(user)
    if replied_author_id is not None and replied_user and str(replied_author_id) not in seen:
        user = emu.user_payload(replied_author_id)
        if user is not None:
            mentioned.append(user)
    mention_roles: list[str] = []
    for rid in ROLE_MENTION.findall(content):
        role = emu.roles.get(int(rid))
        if role is None or rid in mention_roles or ("roles" not in parse and rid not in roles):
            continue
        if role.get("mentionable") or can_everyone:
            mention_roles.append(rid)
    everyone = bool(EVERYONE_MENTION.search(content)) and "everyone" in parse and can_everyone
    return mentioned, mention_roles, everyone


def compose_message(
    emu: DiscordEmulator,
    body: dict[str, Any],
    files: list[UploadedFile],
    *,
    channel_id: int,
    author_id: int,
    existing: dict[str, Any] | None = None,
    allow_ephemeral: bool = False,
    allow_empty: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build (or update) a stored message from a create/edit body; raises DiscordHTTPError."""
    if not isinstance(body, dict):
        raise invalid_form(
            "_root", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
        )
    msg: dict[str, Any] = copy.deepcopy(existing) if existing is not None else {}
    # The bot's limit is the server's (boost tier), checked file by file (limits.py).
    if any(len(f.data) > emu.limits.upload_limit for f in files):
        raise entity_too_large()

    content = body.get("content", msg.get("content", "")) if existing else body.get("content")
    content = "" if content is None else str(content)
    if len(content) > MAX_CONTENT:
        raise invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    embeds_in = body.get("embeds") if "embeds" in body else None
    if embeds_in is not None and len(embeds_in) > MAX_EMBEDS:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")

    # Flags: ephemeral is fixed at creation; LOADING is managed by the interaction code.
    old_flags = int(msg.get("flags", 0))
    want = int(body.get("flags") or 0) if "flags" in body else None
    allowed_flags = CREATE_FLAGS | (FLAG_EPHEMERAL if allow_ephemeral and not existing else 0)
    if want is None:
        flags = old_flags
    elif existing:
        flags = (old_flags & ~CREATE_FLAGS) | (want & CREATE_FLAGS)
    else:
        flags = want & allowed_flags
    ephemeral = bool(flags & FLAG_EPHEMERAL)

    # Attachments: keep listed existing ones, add uploads (metadata id == files[n] index).
    old_atts = {a["id"]: a for a in msg.get("attachments", [])}
    meta_by_index: dict[str, dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    if "attachments" in body and body["attachments"] is not None:
        for meta in body["attachments"]:
            key = str(meta.get("id"))
            if key in old_atts:
                kept.append(old_atts[key])
            else:
                meta_by_index[key] = meta
    elif existing and not files:
        kept = list(old_atts.values())
    elif existing:
        kept = list(old_atts.values())  # adding files without an attachments array appends
    new_atts: list[dict[str, Any]] = []
    for pos, f in enumerate(files):
        index = f.index if f.index is not None else pos
        meta = meta_by_index.get(str(index), {})
        new_atts.append(
            make_attachment(
                emu,
                channel_id=channel_id,
                filename=meta.get("filename") or f.filename,
                data=f.data,
                content_type=f.content_type,
                ephemeral=ephemeral,
                description=meta.get("description"),
            )
        )
    attachments = kept + new_atts
    by_name = {a["filename"]: a for a in attachments}

    embeds = msg.get("embeds", [])
    if embeds_in is not None:
        embeds = _rewrite_embeds(embeds_in, by_name)
    components = msg.get("components", [])
    if "components" in body and body["components"] is not None:
        components = _number_components(body["components"])

    sticker_ids = body.get("sticker_ids") or []
    if (
        not existing
        and not allow_empty
        and not content
        and not embeds
        and not attachments
        and not components
        and not sticker_ids
        and not body.get("poll")
    ):
        raise DiscordHTTPError(400, 50006, "Cannot send an empty message")

    allowed = body.get("allowed_mentions") if "allowed_mentions" in body else msg.get("_allowed")
    reference = body.get("message_reference") or msg.get("message_reference")
    replied_author: int | None = None
    if reference and reference.get("message_id"):
        ref_msg = emu.message(int(reference["message_id"]))
        if ref_msg is not None:
            replied_author = int(ref_msg["author"]["id"])
    mentions, mention_roles, everyone = compute_mentions(
        emu,
        content=content,
        allowed=allowed,
        author_id=author_id,
        channel_id=channel_id,
        replied_author_id=replied_author,
    )

    if existing is None:
        msg.update(
            {
                "id": str(emu.snowflakes.next()),
                "type": 0,
                "channel_id": str(channel_id),
                "author": emu.user_payload(author_id),
                "timestamp": _now(),
                "edited_timestamp": None,
                "pinned": False,
                "tts": bool(body.get("tts", False)),
            }
        )
        if reference and reference.get("message_id"):
            msg["message_reference"] = {
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": str(reference.get("channel_id") or channel_id),
                "guild_id": str(emu.guild_of(int(channel_id))),
            }
    else:
        msg["edited_timestamp"] = _now()
    msg.update(
        {
            "content": content,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "mention_everyone": everyone,
            "attachments": attachments,
            "embeds": embeds,
            "components": components,
            "flags": flags,
            "_allowed": allowed,
        }
    )
    if extra:
        msg.update(extra)
    return msg


def _now() -> str:
    return iso_now()


def public_view(msg: dict[str, Any]) -> dict[str, Any]:
    """The message as the API returns it: private bookkeeping keys (``_…``) removed."""
    return {k: copy.deepcopy(v) for k, v in msg.items() if not k.startswith("_")}
