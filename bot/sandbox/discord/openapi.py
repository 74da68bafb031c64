"""Validate REST traffic against Discord's official OpenAPI spec (discord/discord-api-spec).

The whole spec file is registered as one ``referencing`` resource under a private URI, and
each body is checked against ``{"$ref": "<uri>#/paths/.../schema"}`` so the spec's local
``#/components/...`` references resolve inside the same document. Loading takes ~80 ms, so
``load_spec_validator`` caches one validator per process.

Allowlist (documented, deliberate): discord.py sends new uploads as ``attachments[].id = 0``
(an integer index) where the spec declares a snowflake *string*; Discord accepts both, so an
integer is admitted wherever the schema is a snowflake string. Likewise discord.py's
automatic ``nonce`` is ``secrets.randbits(64)``, half of which exceed the spec's int64 maximum;
Discord accepts them, so a request ``nonce`` in the uint64 range is checked as a string.

Formats are checked (``FORMATS``): int32/int64 ranges, finite doubles, RFC 3339 date-times,
absolute URIs, snowflakes (decimal uint64) and nonces (at most 25 characters).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema._keywords import type as _type_keyword
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:discord-api-spec"
ENV_SPEC = "DISCORD_OPENAPI_SPEC"
_METHODS = ("get", "post", "put", "patch", "delete")
_MAX_ERRORS_PER_BODY = 5


def _snowflake_tolerant_type(validator: Any, types: Any, instance: Any, schema: Any) -> Any:
    # Admit a non-negative integer where the spec says "snowflake" — see module docstring.
    is_int = isinstance(instance, int) and not isinstance(instance, bool)
    if schema.get("format") == "snowflake" and is_int and instance >= 0:
        return
    yield from _type_keyword(validator, types, instance, schema)


_Validator = jsonschema.validators.extend(
    Draft202012Validator, validators={"type": _snowflake_tolerant_type}
)

# The spec's formats (int32, int64, double, date-time, uri, snowflake, nonce), checked as the
# spec means them: OpenAPI 3.1 / JSON Schema 2020-12 formats, plus Discord's own two.
FORMATS = jsonschema.FormatChecker(formats=())
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _integer_format(name: str) -> Callable[[object], bool]:
    low, high = _INT_RANGES[name]

    def check(instance: object) -> bool:
        if not isinstance(instance, int) or isinstance(instance, bool):
            return True  # a format constrains only values of its type
        return low <= instance <= high

    return check


def _double(instance: object) -> bool:
    return not isinstance(instance, float) or math.isfinite(instance)


def _snowflake(instance: object) -> bool:
    # A snowflake is an unsigned 64-bit id in decimal; integers are admitted (see above).
    if isinstance(instance, bool):
        return True
    if isinstance(instance, int):
        return 0 <= instance < 2**64
    if isinstance(instance, str):
        return instance.isascii() and instance.isdigit() and int(instance) < 2**64
    return True


def _nonce(instance: object) -> bool:
    # docs/resources/message.md: an integer or a string of at most 25 characters.
    return not isinstance(instance, str) or len(instance) <= 25


def _date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _RFC3339.match(instance):
        return False
    try:
        dt.datetime.fromisoformat(instance.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _uri(instance: object) -> bool:
    # RFC 3986 absolute URI: a scheme, then a hierarchical part; no spaces or controls.
    if not isinstance(instance, str):
        return True
    if any(ch.isspace() or ord(ch) < 0x20 for ch in instance):
        return False
    parts = urlsplit(instance)
    return bool(_SCHEME.match(parts.scheme)) and bool(parts.netloc or parts.path)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_CHECKS: dict[str, Callable[[object], bool]] = {
    "int32": _integer_format("int32"),
    "int64": _integer_format("int64"),
    "double": _double,
    "snowflake": _snowflake,
    "nonce": _nonce,
    "date-time": _date_time,
    "uri": _uri,
}
for _format, _check in _CHECKS.items():
    FORMATS.checks(_format)(_check)


class _Operation:
    def __init__(self, method: str, template: str, op: dict[str, Any]) -> None:
        self.method = method
        self.template = template
        self.op = op
        self.operation_id: str = op.get("operationId", "")
        parts = template.strip("/").split("/")
        # Literal segments win over parameters: /messages/@original before /messages/{id}.
        self.literal_count = sum(1 for p in parts if not p.startswith("{"))
        pattern = "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        self.regex = re.compile(f"^/{pattern}$")


class OpenApiValidator:
    """Matches requests to spec operations and validates JSON bodies; returns violation strings."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Any] = {}
        self._ops: list[_Operation] = []
        for template, item in spec.get("paths", {}).items():
            for method in _METHODS:
                if method in item:
                    self._ops.append(_Operation(method.upper(), template, item[method]))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> OpenApiValidator:
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh))

    # -- matching ---------------------------------------------------------------------------

    def match(self, method: str, path: str) -> _Operation | None:
        """The operation for a concrete path (``/channels/1/messages``) or a spec template."""
        path = "/" + path.split("?", 1)[0].strip("/")
        method = method.upper()
        best: _Operation | None = None
        for op in self._ops:
            if op.method != method:
                continue
            if op.template == path:
                return op
            if op.regex.match(path) and (best is None or op.literal_count > best.literal_count):
                best = op
        return best

    # -- validation -------------------------------------------------------------------------

    def validate_request(
        self, method: str, path: str, body: Any, *, multipart: bool = False
    ) -> list[str]:
        op = self.match(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the OpenAPI spec"]
        label = f"{op.method} {op.template} request"
        request_body = op.op.get("requestBody")
        if request_body is None:
            if body is not None:
                return [f"{label}: the spec defines no request body, got {type(body).__name__}"]
            return []
        if body is None:
            return [f"{label}: request body required"] if request_body.get("required") else []
        content = request_body.get("content", {})
        media = "multipart/form-data" if multipart and "multipart/form-data" in content else None
        media = media or ("application/json" if "application/json" in content else None)
        if media is None:
            return [f"{label}: the spec has no JSON body for this operation"]
        pointer = self._pointer(
            "paths", op.template, op.method.lower(), "requestBody", "content", media, "schema"
        )
        return self._check(pointer, _admit_uint64_nonce(body), label)

    def validate_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op = self.match(method, path)
        if op is None:
            return [f"{method} {path}: no such operation in the OpenAPI spec"]
        label = f"{op.method} {op.template} response {status}"
        responses = op.op.get("responses", {})
        key = next(
            (k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None
        )
        if key is None:
            return [f"{label}: status not documented (documented: {sorted(responses)})"]
        response = responses[key]
        pointer_base: tuple[str, ...] = ("paths", op.template, op.method.lower(), "responses", key)
        if "$ref" in response:
            ref = response["$ref"]
            pointer_base = tuple(ref.lstrip("#/").split("/"))
            response = self._resolve_local(ref)
        content = response.get("content")
        if not content:
            return [] if body is None else [f"{label}: the spec defines no body, got one"]
        if "application/json" not in content:
            return []
        if body is None:
            return [f"{label}: body expected"]
        pointer = self._pointer(*pointer_base, "content", "application/json", "schema")
        return self._check(pointer, body, label)

    # -- internals --------------------------------------------------------------------------

    def _resolve_local(self, ref: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    @staticmethod
    def _pointer(*parts: str) -> str:
        escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
        return "#/" + "/".join(quote(p, safe="~@") for p in escaped)

    def _check(self, pointer: str, instance: Any, label: str) -> list[str]:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = _Validator(
                {"$ref": SPEC_URI + pointer}, registry=self._registry, format_checker=FORMATS
            )
            self._validators[pointer] = validator
        errors: Iterable[Any] = validator.iter_errors(instance)
        out: list[str] = []
        for error in sorted(errors, key=lambda e: list(e.absolute_path)):
            best = error
            # anyOf/oneOf failures only say "not valid under any"; name the closest branch's error.
            # The deepest error is almost always in the branch the instance was meant for.
            while best.context:
                best = max(best.context, key=lambda e: len(e.absolute_path))
            where = "/".join(str(p) for p in best.absolute_path) or "(root)"
            out.append(f"{label}: {where}: {best.message[:300]}")
            if len(out) >= _MAX_ERRORS_PER_BODY:
                break
        return out


def _admit_uint64_nonce(body: Any) -> Any:
    nonce = body.get("nonce") if isinstance(body, dict) else None
    if isinstance(nonce, int) and not isinstance(nonce, bool) and 2**63 <= nonce < 2**64:
        return {**body, "nonce": str(nonce)}
    return body


_CACHED: OpenApiValidator | None = None


def find_spec_path() -> Path | None:
    """``$DISCORD_OPENAPI_SPEC``, else ``../shared/specs/discord-api-spec/openapi.json`` above."""
    env = os.environ.get(ENV_SPEC)
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"{ENV_SPEC}={env!r} is not a file")
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "specs" / "discord-api-spec" / "openapi.json"
        if candidate.is_file():
            return candidate
    return None


def load_spec_validator() -> OpenApiValidator | None:
    """The process-wide validator, or None when the spec is absent (an error when CI=true)."""
    global _CACHED
    if _CACHED is not None:
        return _CACHED
    path = find_spec_path()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(
                "Discord's OpenAPI spec is required in CI but was not found: set "
                f"{ENV_SPEC} or provide ../shared/specs/discord-api-spec/openapi.json"
            )
        return None
    _CACHED = OpenApiValidator.from_path(path)
    return _CACHED
