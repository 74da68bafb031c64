"""A Midjourney-proxy compatible API simulator (new-api aggregator or plus/C# upstream) for tests
and the offline demo. See `server.py` for the two profiles and mj-api.md for the real servers."""

from .faults import Faults
from .server import MjProxySimulator, RecordedRequest
from .tasks import SimTask

__all__ = ["Faults", "MjProxySimulator", "RecordedRequest", "SimTask"]
