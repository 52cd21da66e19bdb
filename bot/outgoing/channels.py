"""Which person has which channel: the one place that knows how news can reach someone, used
by the outbox's sender of notices (bot/outgoing/messaging.py) and by every page or reply that
promises news (through `promise`).

Usage::

    way = reach(config, "o_friend", share_id, "draw_won", now, ref="outbox-7")
    way.ways        # (Way.SUBSCRIPTION, Way.SMS): how a notice may go, best first
    way.reasons     # why not the others, in words for `outbox list`
    offer = promise(config, "o_friend", share, Page.CLAIM, "draw_won", in_wechat=True,
                    now=now, by=share.draw_at)
    offer.kind, offer.url                      # Promise.SUBSCRIBE and WeChat's page to ask

A person is an OpenID, or `tel:<E.164>` for a mobile verified outside WeChat
(bot/visitors.py). A notice goes by the first channel the person has, in this order:

1. a customer-service message, while WeChat's 48-hour window since their last message is
   open (and they still follow the account);
2. a one-time subscription they granted for this share's news (bot/outgoing/subscriptions.py);
3. a template message (`[wechat] notice_template_id`), unless they unfollowed (to a page
   visitor it is tried: WeChat knows whether they follow);
4. an SMS, when the notice's kind has an SMS template and we know their mobile: the verified
   one, or the one they ordered with;
5. none: the notice is skipped with these reasons.

WeChat may still refuse a channel at send time (45015/45047 the window, 43101 the
subscription, 43004 a follower no more): the sender then goes on to the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from bot import visitors
from bot.config import Config
from bot.outgoing import subscriptions
from bot.outgoing.sms import has_template as has_template
from bot.outgoing.subscriptions import Page
from storage import outbox_sql
from storage.models import MobileCode, Order, Share, SubscriptionGrant, User

WINDOW = dt.timedelta(hours=48)  # WeChat's, for customer-service messages


class Way(StrEnum):
    """A channel, named as `outbox list` shows how a notice left."""

    CHAT = "customer-service message"
    SUBSCRIPTION = "one-time subscription"
    TEMPLATE = "template message"
    SMS = "sms"


@dataclass(frozen=True)
class Reach:
    """The ways a person has now for news of one share, best first, and why not the rest."""

    person: str
    ways: tuple[Way, ...]
    reasons: tuple[str, ...]
    grant: SubscriptionGrant | None = None  # the one-time subscription a message may use
    template_id: str = ""  # its template
    mobile: str | None = None


def reach(
    config: Config, person: str, share_id: int | None, sms_kind: str | None, now: dt.datetime,
    ref: str = "",
) -> Reach:  # fmt: skip
    """How news of share `share_id` can reach `person` now (database reads). `sms_kind`: the
    SMS kind that may carry it (None: the notice is never an SMS); `ref`: the outbox row
    asking, whose own grant counts as held."""
    ways: list[Way] = []
    reasons: list[str] = []
    kept, template = None, subscriptions.template_of(config)
    if visitors.is_mobile(person):
        reasons.append("known by a verified mobile only: no WeChat")
    else:
        user = outbox_sql.person(person)
        if follows(user) and in_window(user, now):
            ways.append(Way.CHAT)
        else:
            reasons.append(_window_closed(user))
        if template and share_id is not None:
            kept = subscriptions.held(person, template, subscriptions.scene_of(share_id), ref)
        if kept is not None:
            ways.append(Way.SUBSCRIPTION)
        else:
            reasons.append(
                "no one-time subscription granted for this share"
                if template
                else "one-time subscriptions are off ([wechat] subscribe_template_id)"
            )
        # Tried unless they are known to have left: whether a page visitor follows, only WeChat
        # knows (43004 if not), and then the next channel is tried.
        if config.wechat.notice_template_id and not unfollowed(user):
            ways.append(Way.TEMPLATE)
        else:
            reasons.append(
                "no longer follows the account, for a template message"
                if config.wechat.notice_template_id
                else "no template message configured"
            )
    mobile = None
    if sms_kind is None:
        reasons.append("this notice is never an SMS")
    elif not has_template(config.sms, sms_kind):
        reasons.append(f"no SMS template for {sms_kind}")
    elif (mobile := mobile_of(person)) is None:
        reasons.append("no mobile known")
    else:
        ways.append(Way.SMS)
    return Reach(person, tuple(ways), tuple(reasons), kept, template, mobile)


def follows(user: User | None) -> bool:
    """Whether they follow the account, as far as we can tell: they said so (subscribe), or
    they wrote to it (only followers can) and never unfollowed since."""
    if user is None:
        return False
    wrote = user.last_message_at is not None and user.unsubscribed_at is None
    return bool(user.subscribed or wrote)


def unfollowed(user: User | None) -> bool:
    """Whether they are known to have unfollowed (and not followed again)."""
    return user is not None and user.unsubscribed_at is not None and not user.subscribed


def follows_person(person: str) -> bool:
    return follows(outbox_sql.person(person))


def in_window(user: User | None, now: dt.datetime, until: dt.datetime | None = None) -> bool:
    """Whether WeChat lets the account message them now (and still at `until`, if given)."""
    if user is None or user.last_message_at is None:
        return False
    return (until or now) - user.last_message_at < WINDOW


def _window_closed(user: User | None) -> str:
    if user is None or user.last_message_at is None:
        return "outside WeChat's 48-hour window: never wrote to the account"
    if not follows(user):
        return "no longer follows the account"
    return "outside WeChat's 48-hour window since the user's last message"


def mobile_of(person: str) -> str | None:
    """Their mobile: the one verified outside WeChat, else one they verified while WeChat knew
    them, else the one they last ordered with."""
    if phone := visitors.mobile_of(person):
        return phone
    verified = (
        MobileCode.select(MobileCode.phone)
        .where((MobileCode.verified_by == person) & MobileCode.used_at.is_null(False))
        .order_by(MobileCode.used_at.desc())
        .scalar()
    )
    ordered = (
        Order.select(Order.phone)
        .where(Order.recipient == person)
        .order_by(Order.created_at.desc())
        .scalar()
    )
    return verified or ordered


# -- what a page may promise -------------------------------------------------------------


class Promise(StrEnum):
    """What a page tells a visitor about news to come: only what will happen for them."""

    CHAT = "chat"  # WeChat's window lasts until the news: a message in the account
    SUBSCRIBED = "subscribed"  # they granted a one-time subscription: one message
    SUBSCRIBE = "subscribe"  # they may grant one: the button to WeChat's page
    TEMPLATE = "template"  # a follower, and template messages are configured
    SMS = "sms"  # a mobile we know, and an SMS template for the news
    COME_BACK = "come_back"  # nothing will reach them: come back to this page


@dataclass(frozen=True)
class Offer:
    kind: Promise
    url: str = ""  # SUBSCRIBE: WeChat's page that asks them


def promise(
    config: Config, visitor: str | None, share: Share, page: Page, sms_kind: str | None,
    in_wechat: bool, now: dt.datetime, by: dt.datetime | None = None,
) -> Offer:  # fmt: skip
    """What `visitor` may be promised about news of `share` expected at `by` (None: some day),
    on a page opened in WeChat's browser or not (database reads)."""
    if not visitor:
        return Offer(Promise.COME_BACK)
    sms = sms_kind is not None and has_template(config.sms, sms_kind)
    if visitors.is_mobile(visitor):
        return Offer(Promise.SMS if sms else Promise.COME_BACK)
    user = outbox_sql.person(visitor)
    if by is not None and follows(user) and in_window(user, now, until=by):
        return Offer(Promise.CHAT)
    template = subscriptions.template_of(config)
    if template and subscriptions.held(visitor, template, subscriptions.scene_of(share.id)):
        return Offer(Promise.SUBSCRIBED)
    if template and in_wechat:
        return Offer(
            Promise.SUBSCRIBE, subscriptions.confirm_url(config, visitor, share, page, now)
        )
    if config.wechat.notice_template_id and follows(user):
        return Offer(Promise.TEMPLATE)
    if sms and mobile_of(visitor):
        return Offer(Promise.SMS)
    return Offer(Promise.COME_BACK)
