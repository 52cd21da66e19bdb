"""Every word a person reads comes from a Jinja2 template under `templates/`.

Usage::

    renderer = Renderer(config)
    renderer.text("chat/welcome.txt", user=user)      # chat replies and SMS: no escaping
    renderer.page("pages/claim.html", share=share)     # pages: HTML-escaped
    renderer.error(invalid)                            # templates/errors/<code>.txt

Templates see `config`, `money` (fen → "¥128.00"), `public_url`,
`delivery_slots(ctx)`, `themed(share, image)` (a share's picture in its theme's frame) and
`w` (the chat's words from bot/words.py: 「{{ w.BACK }}」)
as globals, and the filters `money`, `band` (a price as a band: "¥100–200") and `cst` (a
stored UTC time in the configured time zone). Pages also get `reason(code or Invalid)`: why not, in the chat's words, drawn
from the same errors/ template but escaped, where `|nowrap` keeps a value (an order number)
on one line; in chat and SMS `|nowrap` changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from bot.config import Config
from bot.forms.base import FormContext, Invalid
from bot.forms.delivery import delivery_slots, examples, first_days
from bot.forms.order import OrderAnswers
from bot.forms.safety import neutral
from bot.forms.share import max_quantity
from bot.words import SPOKEN

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def money(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def band(fen: int) -> str:
    """A price as a recipient reads it (the gifts to swap to): a band of a hundred yuan."""
    yuan = fen // 100
    if yuan < 100:
        return "¥100 以内"
    if yuan >= 1000:
        return "¥1000 以上"
    low = yuan // 100 * 100
    return f"¥{low}–{low + 100}"


CARD_PICTURE = re.compile(r"/static/(?:gifts|surprise)/[a-z0-9_-]{1,32}\.png")


def themed_picture(config: Config, share, image: str) -> str:
    """A share's gift picture in its theme's frame (composed by bot/gifting/themes.py under
    /cards/), or the picture itself: no theme, a theme without a frame, a picture from afar."""
    theme = next((t for t in config.themes if t.id == getattr(share, "theme", "")), None)
    if theme is None or not theme.frame or not CARD_PICTURE.fullmatch(image):
        return image
    return f"/cards/{theme.id}.png?pic={quote(image, safe='/')}"


def slots_of(ctx: FormContext):
    return delivery_slots(ctx.config.delivery, ctx.now)


def examples_of(ctx: FormContext) -> list[str]:
    return examples(ctx.config.delivery, ctx.now)


class _Environment(jinja2.Environment):
    """Jinja2's environment, each template's globals one dict: Jinja keeps them as a ChainMap
    over the environment's, which every render copied key by key (nearly half of a short
    prompt's time). The globals are all set in `Renderer.__init__`, before a template loads."""

    def make_globals(self, d):
        return {**self.globals, **(d or {})}


class Renderer:
    def __init__(self, config: Config, directory: Path = TEMPLATES):
        loader = jinja2.FileSystemLoader(str(directory))
        common = {
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": False,  # templates are read once: no stat() of a file per message
        }
        # Chat and SMS are plain text; what people typed is printed with its tag brackets made
        # harmless (bot/forms/safety.py), so nothing becomes a link from the account.
        self.text_env = _Environment(loader=loader, autoescape=False, finalize=neutral, **common)
        self.html_env = _Environment(loader=loader, autoescape=True, **common)
        zone = zoneinfo.ZoneInfo(config.delivery.timezone)

        def local(value: dt.datetime) -> str:
            """A stored (naive UTC) time as people read it, in the bot's time zone."""
            return value.replace(tzinfo=dt.UTC).astimezone(zone).strftime("%Y年%-m月%-d日 %H:%M")

        def delivery_label(order) -> str:
            """An order's delivery slot as the form showed it: 12月1日 周二 14:00-18:00."""
            return OrderAnswers.from_order(order, config.delivery.timezone).delivery.label

        for env in (self.text_env, self.html_env):
            env.globals.update(
                config=config,
                money=money,
                public_url=config.server.public_url,
                delivery_slots=slots_of,
                delivery_examples=examples_of,
                max_quantity=max_quantity,
                w=SPOKEN,
                delivery_label=delivery_label,
                themed=lambda share, image: themed_picture(config, share, image),
            )
            env.filters.update(money=money, cst=local, first_days=first_days, band=band)
        self.text_env.filters["nowrap"] = str
        self.html_env.filters["nowrap"] = lambda v: Markup('<span class="nowrap">{}</span>').format(
            v
        )
        self.html_env.globals["reason"] = self.page_reason  # pages say why in the chat's words
        self.local = local

    def reason(self, why: Invalid | str, **params) -> str:
        """Why not, in words: an Invalid, or an error code with its params (templates/errors/)."""
        if isinstance(why, Invalid):
            return self.error(why, **params)
        return self.text(f"errors/{why}.txt", **params)

    def page_reason(self, why: Invalid | str, **params) -> Markup:
        """`reason` for a page: the same template, escaped, its `|nowrap` values kept whole."""
        if isinstance(why, Invalid):
            why, params = why.code, {**why.params, **params}
        return Markup(self.html_env.get_template(f"errors/{why}.txt").render(**params).strip())

    def text(self, name: str, **context) -> str:
        return self.text_env.get_template(name).render(**context).strip()

    def page(self, name: str, **context) -> str:
        return self.html_env.get_template(name).render(**context)

    def error(self, invalid: Invalid, **params) -> str:
        """Why not, in words; `params` add to the error's own (web=True: said on a page)."""
        return self.text(f"errors/{invalid.code}.txt", **{**invalid.params, **params})
