"""`[[themes]]`: the looks a giver may pick for a share's page and card picture.

Usage::

    check_themes(config.themes)     # raises ConfigError("themes[1].accent", "…") at the first fault

A theme has an `id` (what a share keeps), a `name` (what the giver picks by), two colours
(`background` for the page, `accent` for its buttons and frame lines) and optionally a
`frame`: a /static/ PNG, transparent where the gift's picture shows through, laid over the
picture on the page and in the card (bot/gifting/themes.py). With no [[themes]] the share
dialogues ask nothing more.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.config.build import ConfigError

if TYPE_CHECKING:
    from bot.config.schema import Theme

THEME_ID = re.compile(r"[a-z0-9-]{1,16}")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
MOST = 9  # picked by one digit in chat


def check_themes(themes: list[Theme]) -> None:
    if len(themes) > MOST:
        raise ConfigError("themes", f"at most {MOST} themes (each is picked by one digit)")
    seen: set[str] = set()
    for i, theme in enumerate(themes):
        key = f"themes[{i}]"
        if not THEME_ID.fullmatch(theme.id):
            raise ConfigError(f"{key}.id", "must be 1-16 lower-case letters, digits or -")
        if theme.id in seen:
            raise ConfigError(f"{key}.id", f"duplicate theme id {theme.id!r}")
        seen.add(theme.id)
        if not theme.name.strip() or len(theme.name) > 12:
            raise ConfigError(f"{key}.name", "must be 1-12 characters")
        for name in ("background", "accent"):
            if not COLOUR.fullmatch(getattr(theme, name)):
                raise ConfigError(f"{key}.{name}", "must be a colour like #07c160")
        if theme.frame and not re.fullmatch(r"/static/[A-Za-z0-9_/-]+\.png", theme.frame):
            raise ConfigError(f"{key}.frame", "must be a /static/ PNG (transparent inside)")
