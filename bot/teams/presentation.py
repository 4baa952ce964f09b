"""How the bot presents itself: time zone defaults, and the sandbox's loud marking of everything it sends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cards.passes import CardJson


@dataclass(frozen=True)
class Presentation:
    default_timezone: ZoneInfo
    default_start_hour: int
    decorate: Callable[[CardJson], CardJson]
    text_prefix: str = ""
