"""The image API client, split by reason to change: `transport` (HTTP), `models` (the wire
shapes), `outcomes` (answers → core results and errors), `bodies` (streamed submits), `legacy`
(the Java proxy's /submit/change) and `client` (the `ImageApi` port)."""

from .client import MjClient
from .models import parse_task

__all__ = ["MjClient", "parse_task"]
