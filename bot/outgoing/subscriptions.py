"""One-time subscriptions (一次性订阅消息): the link that asks, its signed `reserved`, the grants
kept, each used once.

Usage::

    url = confirm_url(config, "o_friend", share, Page.CLAIM, now)   # WeChat's page asks them
    came = read_reserved(config, reserved, "o_friend", now)         # Reserved, or None: refused
    back = came_back(config, query, visitor, now)    # /subscribed: the page again, or None
    grant("o_friend", share.id, template_id, scene_of(share.id), came.nonce, now)  # True once
    kept = held("o_friend", template_id, scene_of(share.id), ref)   # unused, or `ref`'s own
    take(kept, ref, now)                                            # True for one outbox row

WeChat's page (https://mp.weixin.qq.com/mp/subscribemsg?action=get_confirm…, its docs'
"One-time_subscription_info") asks the person, then sends them to `redirect_url` with
`openid` (only when they confirmed), `template_id`, `action` (confirm | cancel), `scene` and
our `reserved` as it went. Each confirmation allows one message
(`/cgi-bin/message/template/subscribe`); confirmations under one scene do not add up, so a
share's news has a scene of its own (`scene_of`), and the database keeps at most one unused
grant per (person, template, scene) as WeChat does.

`reserved` (letters and digits, at most 128 bytes, as the docs allow) carries the share, the
page to show again, when it ends (RESERVED_MINUTES) and a nonce, then an HMAC over them and
the visitor it was made for, keyed from `[server] cookie_secret`: a link made for one person
proves nothing for another, a forged or stale one is refused, and the nonce makes a replayed
redirect store nothing twice. In the sandbox the link goes to its stand-in of WeChat's page
(/dev/subscribemsg), with a stand-in template when none is configured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import quote

import peewee

from bot.config import Config
from storage.db import db
from storage.models import Share, SubscriptionGrant

SCENES = 10_001  # WeChat's scene is an integer 0-10000
RESERVED_MINUTES = 30  # how long a link stays good: the person reads WeChat's page meanwhile
SANDBOX_TEMPLATE = "sandbox-one-time-subscription"  # the sandbox's stand-in of an approved one
SANDBOX_PAGE = "/dev/subscribemsg"  # where the sandbox plays WeChat's confirm page
_MAC_HEX = 32  # 128 bits of HMAC-SHA256, in hex


class Page(IntEnum):
    """The page that offered the subscription, shown again afterwards."""

    CLAIM = 1  # /claim/<token>: a draw joined, a gift waiting
    PAY = 2  # /pay/<token>: the giver's share, before and after paying
    DONE = 3  # /claim/<token>/done: the recipient's order


@dataclass(frozen=True)
class Reserved:
    share_id: int
    page: Page
    nonce: str
    expires: int  # unix seconds


def template_of(config: Config) -> str:
    """The one-time subscription template in use: `[wechat] subscribe_template_id`; in the
    sandbox without one, its stand-in's; "" when subscriptions are off."""
    configured = config.wechat.subscribe_template_id
    return configured or (SANDBOX_TEMPLATE if config.server.sandbox else "")


def scene_of(share_id: int) -> int:
    """The scene a share's news is asked under: one grant per person and share."""
    return share_id % SCENES


def confirm_url(config: Config, visitor: str, share: Share, page: Page, now: dt.datetime) -> str:
    """The link to WeChat's page asking `visitor` for one message about `share` (parameters in
    the docs' order; `#wechat_redirect` is required)."""
    sandbox = f"{config.server.public_url}{SANDBOX_PAGE}"  # whole: chat replies carry it too
    base = sandbox if config.server.sandbox else f"{config.wechat.mp_base}/mp/subscribemsg"
    back = f"{config.server.public_url}/subscribed"
    return (
        f"{base}?action=get_confirm&appid={quote(config.wechat.app_id, safe='')}"
        f"&scene={scene_of(share.id)}&template_id={quote(template_of(config), safe='')}"
        f"&redirect_url={quote(back, safe='')}"
        f"&reserved={make_reserved(config, visitor, share.id, page, now)}#wechat_redirect"
    )


def make_reserved(config: Config, visitor: str, share_id: int, page: Page, now: dt.datetime) -> str:
    expires = int(now.replace(tzinfo=dt.UTC).timestamp()) + RESERVED_MINUTES * 60
    body = f"{share_id:012x}{expires:08x}{int(page):x}{secrets.token_hex(6)}"
    return body + _mac(config, body, visitor)


def read_reserved(config: Config, reserved: str, visitor: str, now: dt.datetime) -> Reserved | None:
    """What a `reserved` that came back says, when it was made for `visitor` by us and has not
    ended; None for anything else."""
    body, mac = reserved[:-_MAC_HEX], reserved[-_MAC_HEX:]
    if len(body) != 33 or not reserved.isascii() or not reserved.isalnum():
        return None
    if not visitor or not hmac.compare_digest(_mac(config, body, visitor), mac.lower()):
        return None
    try:
        share_id, expires, page = int(body[:12], 16), int(body[12:20], 16), Page(int(body[20]))
    except ValueError:
        return None
    if expires <= now.replace(tzinfo=dt.UTC).timestamp():
        return None
    return Reserved(share_id, page, body[21:], expires)


def _mac(config: Config, body: str, visitor: str) -> str:
    key = hashlib.sha256(b"gift-bot one-time subscription|" + config.server.cookie_secret.encode())
    message = f"{body}|{visitor}".encode()
    return hmac.new(key.digest(), message, hashlib.sha256).hexdigest()[:_MAC_HEX]


def came_back(config: Config, query: dict[str, str], visitor: str | None, now: dt.datetime):
    """WeChat's redirect to /subscribed (in a write transaction): the path of the page to show
    again, the grant kept once when they confirmed; None when it is not ours to believe. The
    `openid` WeChat names only on a confirmation; a cancel is read with the page's visitor."""
    action = query.get("action", "")
    person = query.get("openid", "") if action == "confirm" else (visitor or "")
    came = read_reserved(config, query.get("reserved", ""), person, now)
    share = Share.get_or_none(Share.id == came.share_id) if came else None
    if share is None or action not in ("confirm", "cancel"):
        return None
    scene, template = scene_of(share.id), template_of(config)
    if action == "confirm":
        if not template or query.get("template_id") != template:
            return None
        if query.get("scene") != str(scene):
            return None
        grant(person, share.id, template, scene, came.nonce, now)
    return {
        Page.CLAIM: f"/claim/{share.token}",
        Page.PAY: f"/pay/{share.token}",
        Page.DONE: f"/claim/{share.token}/done",
    }[came.page]


# -- the grants --------------------------------------------------------------------------


def grant(
    openid: str, share_id: int, template_id: str, scene: int, nonce: str, now: dt.datetime
) -> bool:
    """Keep a confirmation (in the caller's transaction); False when it adds nothing: its
    redirect came before (the nonce), or an unused grant holds the scene (WeChat's rule)."""
    try:
        with db.atomic():  # a savepoint: the unique indexes decide a race
            SubscriptionGrant.create(
                openid=openid, share=share_id, template_id=template_id, scene=scene,
                nonce=nonce, granted_at=now,
            )  # fmt: skip
    except peewee.IntegrityError:
        return False
    return True


def held(openid: str, template_id: str, scene: int, ref: str = "") -> SubscriptionGrant | None:
    """The grant a message to `openid` at this scene may use: one `ref` already took (a retry
    of that message), else the unused one."""
    usable = SubscriptionGrant.used_at.is_null()
    if ref:
        usable |= SubscriptionGrant.used_by == ref
    return (
        SubscriptionGrant.select()
        .where(
            (SubscriptionGrant.openid == openid)
            & (SubscriptionGrant.template_id == template_id)
            & (SubscriptionGrant.scene == scene)
            & usable
        )
        .order_by(SubscriptionGrant.used_at.is_null(), SubscriptionGrant.id)
        .first()
    )


def take(kept: SubscriptionGrant, ref: str, now: dt.datetime) -> bool:
    """Use the grant for the message `ref`, exactly once however many workers try: True when
    it is `ref`'s (now, or from an earlier try of the same message)."""
    if kept.used_at is not None:
        return kept.used_by == ref
    taken = (
        SubscriptionGrant.update(used_at=now, used_by=ref)
        .where((SubscriptionGrant.id == kept.id) & SubscriptionGrant.used_at.is_null())
        .execute()
    )
    return taken == 1
