"""Themed cards ([[themes]]): a gift's picture composed in a theme's frame and colours, for
the card a giver forwards and the share's page.

Usage::

    png = card_picture(config, "festive", "/static/gifts/tea.png")   # bytes; None: no such
    css = stylesheet(config)                                          # /themes.css

The picture is drawn on the server with Pillow: the gift's picture (a surprise's box, never
the gift inside) on the theme's background, the frame laid over it. It depends on nothing but
the theme and the picture, so it is drawn once and kept (in this process, by the files' times;
a changed frame or picture is drawn again). The page's colours are a stylesheet drawn from the
config, since the pages' Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from PIL import Image, ImageOps

from bot.config import Config, Theme
from bot.render import CARD_PICTURE

STATIC = Path(__file__).resolve().parents[2] / "static"
SIDE = 600  # the gift pictures' size, and WeChat's card picture's (a square shows whole)
KEPT = 64
_kept: dict[tuple, bytes] = {}
_lock = threading.Lock()


def theme_of(config: Config, theme_id: str) -> Theme | None:
    return next((t for t in config.themes if t.id == theme_id), None)


def card_picture(config: Config, theme_id: str, picture: str) -> bytes | None:
    """The picture (a /static/ gift or surprise PNG) in the theme's frame, as a PNG."""
    theme = theme_of(config, theme_id)
    if theme is None or not theme.frame or not CARD_PICTURE.fullmatch(picture):
        return None
    source, frame = (
        STATIC / picture.removeprefix("/static/"),
        STATIC / theme.frame.removeprefix("/static/"),
    )
    if not source.is_file() or not frame.is_file():
        return None
    key = (theme, picture, source.stat().st_mtime_ns, frame.stat().st_mtime_ns)
    with _lock:
        if key in _kept:
            return _kept[key]
    drawn = _compose(theme, source, frame)
    with _lock:
        if len(_kept) >= KEPT:
            _kept.pop(next(iter(_kept)))
        _kept[key] = drawn
    return drawn


def _compose(theme: Theme, source: Path, frame: Path) -> bytes:
    card = Image.new("RGBA", (SIDE, SIDE), theme.background)
    inset = SIDE // 12  # the frame's border, where the background shows
    with Image.open(source) as gift:
        inner = ImageOps.fit(gift.convert("RGBA"), (SIDE - 2 * inset, SIDE - 2 * inset))
    card.alpha_composite(inner, (inset, inset))
    with Image.open(frame) as border:
        card.alpha_composite(border.convert("RGBA").resize((SIDE, SIDE)))
    out = io.BytesIO()
    card.convert("RGB").save(out, "PNG", optimize=True)
    return out.getvalue()


def stylesheet(config: Config) -> str:
    """Each theme's colours for its share's pages (`body.theme-<id>`)."""
    rules = []
    for t in config.themes:
        scope = f"body.theme-{t.id}"
        rules += [
            f"{scope} {{ background: {t.background}; }}",
            f"{scope} .btn-primary {{ background: {t.accent}; }}",
            f"{scope} .blessing {{ border-left-color: {t.accent}; }}",
            f"{scope} .blessing blockquote::before, {scope} .blessing blockquote::after "
            f"{{ color: {t.accent}; }}",
            f"{scope} .kicker, {scope} .fact strong {{ color: {t.accent}; }}",
            f"{scope} .gift {{ box-shadow: 0 0 0 3px {t.accent}; }}",
        ]
    return "\n".join(rules) + "\n"
