"""A recipient's thank-you note to the giver: `谢谢 <text>` in chat, or the box on the
confirmation page. One per order; words only (no links or markup); the giver reads it as a
WeChat message and in 我送出的.

Usage::

    note_in("谢谢 收到啦")                  # "收到啦"; note_in("谢谢你送的茶！") is all of it
    order = thank(notices, config, "o_friend", "收到啦，好喜欢！", now)            # their latest order
    order = thank(notices, config, "o_friend", text, now, order_no="G261202-7KQ3X")  # the page's
"""

from __future__ import annotations

import datetime as dt

from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from bot.forms.safety import free_text
from bot.outgoing.notices import Notices
from bot.words import Word, after
from storage.db import locked, write_transaction
from storage.models import Gift, Order, Share


def thank(
    notices: Notices,
    config: Config,
    openid: str,
    text: str,
    now: dt.datetime,
    order_no: str | None = None,
) -> Order:
    words = check(config, text)
    with write_transaction():
        query = Order.select().where((Order.recipient == openid) & (Order.status != "cancelled"))
        if order_no:
            query = query.where(Order.order_no == order_no)
        order = locked(query.order_by(Order.created_at.desc(), Order.id.desc())).first()
        if order is None:
            raise Invalid(Code.THANKS_NO_ORDER)
        # loaded here: the refusal is rendered where no query may run (a page, on the loop)
        order.gift, order.share = Gift.get_by_id(order.gift_id), Share.get_by_id(order.share_id)
        kept = Order.update(thanks=words, thanked_at=now).where(
            (Order.id == order.id) & Order.thanked_at.is_null()
        )
        if order.thanked_at is not None or kept.execute() != 1:
            raise Invalid(Code.THANKS_ALREADY, order=order)
        order.thanks, order.thanked_at = words, now
        notices.thanks(order)
        return order


def note_in(text: str) -> str | None:
    """The note in a chat message starting with 谢谢: what follows `谢谢 ` or `谢谢：`; a
    message like 谢谢你送的茶！ is the note itself. None for a message that is no thanks."""
    rest = after(Word.THANKS, text)
    if rest is None:
        return None
    typed = text.strip()
    if typed[len(Word.THANKS) :][:1] in ("", "：", ":") or typed[len(Word.THANKS)].isspace():
        return rest.lstrip("：:").strip()
    return typed


def check(config: Config, text: str) -> str:
    """The note as it will be shown: trimmed, a line or a few, no links or markup."""
    words = "\n".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())
    if not words:
        raise Invalid(Code.THANKS_EMPTY)
    most = config.shares.thanks_max_length
    if len(words) > most:
        raise Invalid(Code.THANKS_TOO_LONG, length=len(words), most=most)
    return free_text(words, "留言", lines=True)
