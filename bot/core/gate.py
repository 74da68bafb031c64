"""Where the moderation use cases used to live; they are in `bot.core.moderation.gate` and
`bot.core.moderation.service` now. Kept so imports of `bot.core.gate` keep working."""

from bot.core.moderation.gate import ModerationGate
from bot.core.moderation.policy import NotAllowed
from bot.core.moderation.service import ModerationService, NotModerator

__all__ = ["ModerationGate", "ModerationService", "NotAllowed", "NotModerator"]
