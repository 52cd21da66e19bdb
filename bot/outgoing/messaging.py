"""WeChat messages to a user, sent only when WeChat allows them: the outbox's `wechat_text`.

Usage::

    enqueue("wechat_text", key, wechat_text(openid, text, notice=Notice(...)))   # in a transaction
    await Messenger(config, wechat, db).send(payload, ref)                       # the outbox's sender

A customer-service message is allowed only within 48 hours of the user's last message to
the account, and a few per window (WeChat answers 45015 outside it, 45047 past its count;
`../shared/WECHAT.md` §5). Outside the window, or when WeChat says so, the message falls
back to a template message when `[wechat] notice_template_id` is set (a 服务号 feature: no
window) and the message carries a notice for it; otherwise it is **skipped** with the reason:
final, shown by `outbox list`, never retried, and its news stays readable in 我送出的 / 我收到的.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bot import users
from bot.config import Config
from bot.outgoing.wechat_api import WeChatApi, WeChatError
from storage.runner import Runner

WINDOW_CLOSED = frozenset({45015, 45047})  # out of the 48-hour window; over its count


@dataclass(frozen=True)
class Notice:
    """What a template message shows: its first line, the gift, what happened, a last word,
    and the page it opens. The template's keys are `first`, `keyword1`, `keyword2`, `remark`."""

    first: str
    gift: str
    status: str
    remark: str = ""
    url: str = ""


class Skipped(Exception):
    """Not sent, and not to be tried again: `reason` says why (the outbox keeps it)."""

    skipped = True
    retryable = False


def wechat_text(
    openid: str, text: str, notice: Notice | None = None, card: dict | None = None
) -> dict:
    """An outbox payload for a WeChat message to `openid`; with `card` (title, description,
    url, picurl) it goes as a card to forward, `text` standing in where a card cannot."""
    payload = {"openid": openid, "text": text, "notice": asdict(notice) if notice else None}
    return payload | ({"card": card} if card else {})


class Messenger:
    def __init__(
        self,
        config: Config,
        wechat: WeChatApi,
        db: Runner,
        clock: Callable[[], dt.datetime],
        inbox=None,
    ):
        self.config, self.wechat, self.db, self.clock, self.inbox = config, wechat, db, clock, inbox

    async def send(self, payload: dict, ref: str) -> None:
        openid, text, notice = payload["openid"], payload["text"], payload.get("notice")
        if await self.db.run(users.in_window, openid, self.clock()):
            try:
                return await self._text(openid, text, payload.get("card"))
            except WeChatError as exc:
                if exc.errcode not in WINDOW_CLOSED:
                    raise
                closed = f"WeChat refused it ({exc.errcode} {exc.errmsg})"
        else:
            closed = "outside WeChat's 48-hour window since the user's last message"
        template = self.config.wechat.notice_template_id
        if template and notice:
            return await self._template(openid, template, notice)
        raise Skipped(f"{closed}; no template message configured: kept for the user's lists")

    async def _text(self, openid: str, text: str, card: dict | None = None) -> None:
        if self.inbox is not None:  # the sandbox: no Official Account behind it
            self.inbox.add("wechat", openid, text)
            return
        if card:
            return await self.wechat.send_card(openid, card)
        await self.wechat.send_text(openid, text)

    async def _template(self, openid: str, template_id: str, notice: dict) -> None:
        data = {
            "first": notice["first"],
            "keyword1": notice["gift"],
            "keyword2": notice["status"],
            "remark": notice["remark"],
        }
        data = {key: value for key, value in data.items() if value}  # no empty values sent
        if self.inbox is not None:
            self.inbox.add("template", openid, " / ".join(v for v in data.values() if v))
            return
        await self.wechat.send_template(openid, template_id, notice["url"], data)
