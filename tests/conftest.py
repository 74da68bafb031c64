"""Shared fixtures: the OpenAPI validator (loaded once), free ports, PostgreSQL availability."""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def spec_validator() -> Any:
    """Discord's OpenAPI validator, or None (with a visible warning) off CI without the spec.

    In CI a missing spec raises inside load_spec_validator, failing every test that needs it.
    """
    from bot.sandbox.discord import load_spec_validator

    validator = load_spec_validator()
    if validator is None:
        warnings.warn(
            "Discord's OpenAPI spec not found (../shared/specs/discord-api-spec/openapi.json): "
            "REST traffic is NOT checked against it in this run",
            stacklevel=1,
        )
    return validator
