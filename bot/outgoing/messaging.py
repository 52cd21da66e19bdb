"""A notice to a person, sent the way they can be reached: the outbox's `wechat_text`.

Usage::

    enqueue("wechat_text", key, wechat_text(person, text, notice=Notice(...), share=share.id,
                                            title="中奖", sms=SmsNotice("draw_won", params, sms_text)))
    by = await Messenger(config, wechat, db, clock).send(payload, ref)   # the outbox's sender
    by                                       # "one-time subscription": how it went (outbox.sent_by)

Which channels the person has, and in which order, is bot/outgoing/channels.py's to say; this
module only takes them in turn. A customer-service message needs WeChat's 48-hour window
(WeChat answers 45015 outside it, 45047 past its count; `../shared/WECHAT.md` §5); a one-time
subscription is used once (its grant taken by a guarded UPDATE before the call; WeChat answers
43101 when it holds none); a template message goes to followers (43004 otherwise). When WeChat
refuses one of these for such a reason, the next is tried. An SMS is handed to the outbox as a
row of its own (`sms:notice:<ref>`), so the vendors' at-most-once rules hold for it too. With no
channel left the notice is **skipped** with the reasons: final, shown by `outbox list`, never
retried, and its news stays readable in 我送出的 / 我收到的 and on the pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bot.config import Config
from bot.outgoing import channels, subscriptions
from bot.outgoing.channels import Reach, Way
from bot.outgoing.outbox import enqueue
from bot.outgoing.wechat_api import WeChatApi, WeChatError
from storage.runner import Runner

# What WeChat answers when a channel is closed to this person: then the next is tried.
CLOSED = {
    Way.CHAT: frozenset({45015, 45047, 43004}),  # out of the window; over its count; unfollowed
    Way.SUBSCRIPTION: frozenset({43101}),  # no (unused) confirmation at WeChat
    Way.TEMPLATE: frozenset({43004, 43101}),  # not a follower; they refuse the account's messages
}
WINDOW_CLOSED = CLOSED[Way.CHAT]
TITLE_MAX, CONTENT_MAX = 15, 200  # a one-time subscription message's title and text (the docs)


@dataclass(frozen=True)
class Notice:
    """What a template message shows: its first line, the gift, what happened, a last word,
    and the page it opens. The template's keys are `first`, `keyword1`, `keyword2`, `remark`."""

    first: str
    gift: str
    status: str
    remark: str = ""
    url: str = ""


@dataclass(frozen=True)
class SmsNotice:
    """The SMS a notice may become: its kind (bot/sms_kinds.py), variables and whole text."""

    template: str
    params: dict[str, str]
    text: str


class Skipped(Exception):
    """Not sent, and not to be tried again: `reason` says why (the outbox keeps it)."""

    skipped = True
    retryable = False


class _Gone(Exception):
    """A channel found closed just before the call (another message took the grant)."""


def wechat_text(
    person: str, text: str, notice: Notice | None = None, card: dict | None = None, *,
    share: int | None = None, title: str = "", sms: SmsNotice | None = None,
    away: str | None = None,
) -> dict:  # fmt: skip
    """An outbox payload for a notice to `person` about `share`: `text` in chat (with `card`,
    title, description, url and picurl, as a card to forward), `notice` as a template message,
    `title` and `away` (else `text`) as a one-time subscription message, `sms` as an SMS."""
    payload = {"openid": person, "text": text, "notice": asdict(notice) if notice else None}
    payload |= {"share": share, "title": title, "sms": asdict(sms) if sms else None}
    payload |= {"away": away} if away else {}
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

    async def send(self, payload: dict, ref: str) -> str:
        """Send the notice by the first channel that takes it; returns the channel's name."""
        share, sms = payload.get("share"), payload.get("sms") or None
        found = await self.db.run(
            channels.reach, self.config, payload["openid"], share,
            sms["template"] if sms else None, self.clock(), ref,
        )  # fmt: skip
        refused = []
        for way in found.ways:
            try:
                return await self._by(way, payload, found, ref)
            except _Gone as gone:
                refused.append(f"{way}: {gone}")
            except WeChatError as exc:
                if exc.errcode not in CLOSED.get(way, ()):
                    raise
                refused.append(f"{way}: WeChat refused it ({exc.errcode} {exc.errmsg})")
        reasons = "; ".join([*refused, *found.reasons])
        raise Skipped(f"no channel reaches them ({reasons}): kept for the user's lists")

    async def _by(self, way: Way, payload: dict, found: Reach, ref: str) -> str:
        person, text = payload["openid"], payload["text"]
        if way == Way.CHAT:
            await self._text(person, text, payload.get("card"))
        elif way == Way.SUBSCRIPTION:
            await self._subscription(payload, found, ref)
        elif way == Way.TEMPLATE:
            notice = payload.get("notice")
            if not notice:
                raise _Gone("this notice has no template message")
            await self._template(person, self.config.wechat.notice_template_id, notice)
        else:
            key = f"sms:notice:{ref}"
            await self.db.write(enqueue, "sms", key, {"phone": found.mobile, **payload["sms"]})
            return f"{way}: {key}"
        return str(way)

    async def _text(self, openid: str, text: str, card: dict | None = None) -> None:
        if self.inbox is not None:  # the sandbox: no Official Account behind it
            self.inbox.add("wechat", openid, text, card=card)
            return
        if card:
            return await self.wechat.send_card(openid, card)
        await self.wechat.send_text(openid, text)

    async def _subscription(self, payload: dict, found: Reach, ref: str) -> None:
        """One message on the person's grant, which this row takes first (once, whatever
        other workers do); a retry of the same row finds it its own."""
        kept = found.grant
        if not await self.db.write(subscriptions.take, kept, ref, self.clock()):
            raise _Gone("its grant went to another message")
        person, notice = payload["openid"], payload.get("notice") or {}
        title = clip(payload.get("title") or notice.get("status") or "", TITLE_MAX)
        content = clip(payload.get("away") or payload["text"], CONTENT_MAX)
        if self.inbox is not None:
            follower = await self.db.run(channels.follows_person, person)
            self.inbox.add("subscription", person, content, title=title, follower=follower)
            return
        await self.wechat.send_subscription(
            person, found.template_id, kept.scene, title, content, notice.get("url", "")
        )

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


def clip(text: str, most: int) -> str:
    """At most `most` characters, an ellipsis saying where it was cut."""
    text = text.strip()
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"
