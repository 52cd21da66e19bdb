"""A share as it travels (S11): the card to forward (the title, words, picture and claim link
of the news article WeChat shows, a surprise wrapped: it reaches the recipient), and the
claim QR, for claiming in the chat.

Usage::

    card = share_card(config, renderer, share)     # bot.replies.Card
    claim_url(config, share.token)                 # <public_url>/claim/<token>
    absolute(config, "/static/gifts/tea.jpg")      # a picture's address for WeChat
    await qr_url(services, share)                  # the claim QR's URL (asked of WeChat once)
"""

from __future__ import annotations

import datetime as dt
import logging

from bot.config import Config
from bot.gifting import surprise
from bot.outgoing.wechat_api import QrPaused, WeChatError
from bot.render import Renderer, themed_picture
from bot.replies import Card
from storage.models import Share

log = logging.getLogger("gift_bot.claims")

QR_SECONDS = 2_592_000  # 30 days, WeChat's longest temporary QR


def absolute(config: Config, path: str) -> str:
    return path if path.startswith(("http://", "https://")) else config.server.public_url + path


def claim_url(config: Config, token: str) -> str:
    return f"{config.server.public_url}/claim/{token}"


def share_card(config: Config, renderer: Renderer, share) -> Card:
    gift = surprise.as_seen(share)  # the card is forwarded to the recipient
    return Card(
        title=renderer.text("share/card_title.txt", gift=gift, share=share),
        description=renderer.text("share/card_description.txt", gift=gift, share=share),
        picurl=absolute(config, themed_picture(config, share, gift.image)),
        url=claim_url(config, share.token),
    )


async def qr_url(services, share: Share) -> str | None:
    """The URL the claim QR encodes: kept on the share, or asked of WeChat; None without."""
    now = services.now()
    if share.qr_url and share.qr_expires_at and share.qr_expires_at > now:
        return share.qr_url
    if services.config.server.sandbox:
        return None  # no Official Account behind the sandbox
    try:
        qr = await services.wechat.create_qr(share.token, QR_SECONDS)
    except QrPaused:
        return None
    except WeChatError as exc:
        log.warning("claim QR unavailable", extra={"error": str(exc)})
        return None
    share.qr_url = qr.url
    share.qr_expires_at = now + dt.timedelta(seconds=qr.expire_seconds - 60)
    await services.db.write(keep_qr, share)
    return share.qr_url


def keep_qr(share: Share) -> None:
    """Cache the claim QR's URL and expiry, so WeChat is asked once per share per month."""
    Share.update(qr_url=share.qr_url, qr_expires_at=share.qr_expires_at).where(
        Share.id == share.id
    ).execute()
