"""A share as a card to forward (S11): the title, words, picture and claim link of the news
article WeChat shows, a surprise wrapped (the card reaches the recipient).

Usage::

    card = share_card(config, renderer, share)     # bot.replies.Card
    claim_url(config, share.token)                 # <public_url>/claim/<token>
    absolute(config, "/static/gifts/tea.jpg")      # a picture's address for WeChat
"""

from __future__ import annotations

from bot.config import Config
from bot.gifting import surprise
from bot.render import Renderer
from bot.replies import Card


def absolute(config: Config, path: str) -> str:
    return path if path.startswith(("http://", "https://")) else config.server.public_url + path


def claim_url(config: Config, token: str) -> str:
    return f"{config.server.public_url}/claim/{token}"


def share_card(config: Config, renderer: Renderer, share) -> Card:
    gift = surprise.as_seen(share)  # the card is forwarded to the recipient
    return Card(
        title=renderer.text("share/card_title.txt", gift=gift, share=share),
        description=renderer.text("share/card_description.txt", gift=gift, share=share),
        picurl=absolute(config, gift.image),
        url=claim_url(config, share.token),
    )
