"""Themed cards ([[themes]]): the composed card pictures and the themes' stylesheet.

GET /cards/<theme>.png?pic=/static/gifts/tea.png   the picture in the theme's frame
GET /themes.css                                    every theme's page colours

Neither holds anything of a person (a theme and a catalogue picture), so both may be cached
by anyone; WeChat fetches the card's picture when it shows the card.
"""

from __future__ import annotations

import asyncio

import tornado.web

from bot.gifting import themes
from handlers.web.base import BaseHandler

THEME = r"([a-z0-9-]{1,16})"


class CardPicture(BaseHandler):
    """A gift's (or a surprise box's) picture in a theme's frame."""

    async def get(self, theme_id: str) -> None:
        picture = self.get_query_argument("pic", "")
        # Drawing is Pillow's CPU work: a thread of its own, not the loop, not a database thread.
        drawn = await asyncio.to_thread(
            themes.card_picture, self.services.config, theme_id, picture
        )
        if drawn is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.finish(drawn)


class ThemeStyles(BaseHandler):
    """The themes' colours, as a stylesheet the pages link to."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.set_header("Cache-Control", "public, max-age=600")
        self.finish(themes.stylesheet(self.services.config))
