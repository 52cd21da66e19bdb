"""Claiming outside WeChat with a verified mobile: a 6-digit code by SMS, then the order form.

Usage::

    phone = send_code(notices, token, "138 0013 8000", ip, visitor, now)  # queues it; or Invalid
    why = verify(config, token, phone, "123456", visitor, now)  # None: verified, else a Code
    network_of("2001:db8:1:2::5")                               # "2001:db8:1:2::/64"

A browser that is not WeChat's cannot use WeChat's login, so such a visitor proves a mobile
instead and orders as `tel:<E.164>` (bot/visitors.py): the unique (share, recipient) index then
makes one order per verified mobile per share, and `order_refusal` refuses a mobile that
already ordered in WeChat for the share. A code is valid CODE_MINUTES, dies after MAX_TRIES
wrong answers, and is kept only as an HMAC (keyed by the cookie secret), compared in constant
time. The SMS leaves through the outbox as `sms_code`, its code sealed (Fernet, the same key),
so neither the outbox table nor a log line holds it; `code_sender` opens it at send time.

Every code costs an SMS, so sending one is limited: per number as the SMS vendors limit it
(WECHAT.md §10: one a minute, five an hour, ten a day), per network (one a minute, ten an
hour: an IPv4 address, or an IPv6 /64, which is one subscriber's), per share and for the whole
account (`[sms] codes_per_share_hour`, `codes_per_hour`). Each count is taken holding its own
lock (the number's, the network's, the share's row, the account's) to the end of the
transaction that adds the code, so requests at once, in any process, pass a limit one by one.
`/metrics` counts the codes sent and those refused, by reason (`giftbot_login_codes`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import unicodedata
from collections.abc import Awaitable, Callable

from cryptography.fernet import Fernet
from peewee import fn

from bot import metrics, visitors
from bot.codes import Code
from bot.config import Config
from bot.forms.base import Invalid
from bot.forms.person import parse_phone
from bot.gifting import draws, shares
from bot.outgoing.outbox import enqueue
from bot.outgoing.sms import has_template
from storage.db import after_commit, hold, locked, write_transaction
from storage.models import MobileCode, Order, Share

CODE_MINUTES = 5
MAX_TRIES = 5
HOUR, MINUTE = dt.timedelta(hours=1), dt.timedelta(minutes=1)
PER_NUMBER = ((MINUTE, 1, Code.MOBILE_RATE_MINUTE), (HOUR, 5, Code.MOBILE_RATE_HOUR),
              (dt.timedelta(days=1), 10, Code.MOBILE_RATE_DAY))  # fmt: skip
PER_NETWORK = ((MINUTE, 1), (HOUR, 10))  # one network's visitors
IPV6_SUBSCRIBER = 64  # the prefix a provider hands one subscriber: one network


def available(config: Config) -> bool:
    """Whether codes can be sent: a vendor needs an approved `login_code` template."""
    return has_template(config.sms, "login_code")


def network_of(ip: str) -> str:
    """Who is counted as one sender: an IPv4 address, or the /64 of an IPv6 one (a provider
    gives each subscriber a /64, so its addresses cost nothing to change)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]  # not an address (a unix socket's peer): counted as it is
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network((address, IPV6_SUBSCRIBER), strict=False))


def order_refusal(share: Share, openid: str) -> Code | None:
    """A verified mobile that already ordered for this share (in WeChat, as its phone)."""
    phone = visitors.mobile_of(openid)
    if phone and Order.select().where((Order.share == share.id) & (Order.phone == phone)).exists():
        return Code.MOBILE_ORDERED
    return None


def send_code(
    notices, token: str, typed: str, ip: str, visitor: str | None, now: dt.datetime
) -> str:
    """Queue a new code for this mobile and share; returns the mobile (E.164). `visitor`: who
    the browser is known as already (None, an OpenID, a verified mobile). Raises Invalid: a
    wrong number, the share closed or the giver's own, the mobile ordered already, a limit."""
    try:
        phone = parse_phone(typed)
        with write_transaction():
            _send_code(notices, token, phone, network_of(ip), visitor, now)
    except Invalid as refused:
        metrics.login_code(refused.code)
        raise
    return phone


def _send_code(notices, token: str, phone: str, network: str, visitor, now: dt.datetime) -> None:
    config = notices.config
    share = locked(Share.select().where(Share.token == token)).first()
    if share is None:
        raise Invalid(Code.SHARE_UNKNOWN)
    browser = visitors.own_share_refusal(share, visitor)  # known already: the giver themself
    if why := browser or _closed(share, visitors.identity(phone), now):
        raise Invalid(why, share=share)
    hold(f"mobile-code:number:{phone}")
    for window, most, code in PER_NUMBER:
        if _sent_since(now - window, MobileCode.phone == phone) >= most:
            raise Invalid(code)
    hold(f"mobile-code:network:{network}")
    for window, most in PER_NETWORK:
        if _sent_since(now - window, MobileCode.ip == network) >= most:
            raise Invalid(Code.MOBILE_RATE_IP)
    if _sent_since(now - HOUR, MobileCode.share == share.id) >= config.sms.codes_per_share_hour:
        raise Invalid(Code.MOBILE_RATE_SHARE)  # counted under the share's row, locked above
    hold("mobile-code:account")
    if _sent_since(now - HOUR) >= config.sms.codes_per_hour:
        raise Invalid(Code.MOBILE_RATE_ACCOUNT)
    code = f"{secrets.randbelow(10**6):06d}"
    row = MobileCode.create(
        share=share.id, phone=phone, ip=network, code_hash=_hash(config, share.id, phone, code),
        created_at=now, expires_at=now + dt.timedelta(minutes=CODE_MINUTES),
    )  # fmt: skip
    params = {"code": code}
    text = notices.renderer.text("sms/login_code.txt", code=code, minutes=CODE_MINUTES)
    sealed = _fernet(config).encrypt(json.dumps({"text": text, "params": params}).encode())
    enqueue("sms_code", f"sms:code:{row.id}", {"phone": phone, "sealed": sealed.decode()})
    after_commit(lambda: metrics.login_code("sent"))


def verify(
    config: Config, token: str, phone: str, typed: str, visitor: str | None, now: dt.datetime
) -> Code | None:
    """Check the code typed against this mobile's latest code for the share; None when it
    holds (the code is used up then), else why not. A wrong try is counted and kept. A
    `visitor` known by WeChat who proves a mobile makes it theirs (bot/visitors.py)."""
    typed = unicodedata.normalize("NFKC", typed or "").strip().replace(" ", "")
    with write_transaction():
        share = Share.select(Share.id).where(Share.token == token).first()
        latest = (
            MobileCode.select()
            .where((MobileCode.share == (share.id if share else 0)) & (MobileCode.phone == phone))
            .order_by(MobileCode.id.desc())
            .limit(1)
        )
        row = locked(latest).first()
        if row is None or row.used_at is not None:
            return Code.MOBILE_CODE_MISSING
        if row.tries >= MAX_TRIES:
            return Code.MOBILE_CODE_ENDED
        if row.expires_at <= now:
            return Code.MOBILE_CODE_EXPIRED
        if hmac.compare_digest(_hash(config, share.id, phone, typed), row.code_hash):
            theirs = "" if visitors.is_mobile(visitor) else visitor or ""  # a WeChat user's
            used = {MobileCode.used_at: now, MobileCode.verified_by: theirs}
            MobileCode.update(used).where(MobileCode.id == row.id).execute()
            return None
        MobileCode.update(tries=MobileCode.tries + 1).where(MobileCode.id == row.id).execute()
        return Code.MOBILE_CODE_ENDED if row.tries + 1 >= MAX_TRIES else Code.MOBILE_CODE_WRONG


def tries_left(token: str, phone: str) -> int:
    row = (
        MobileCode.select(MobileCode.tries)
        .join(Share)
        .where((Share.token == token) & (MobileCode.phone == phone))
        .order_by(MobileCode.id.desc())
        .first()
    )
    return MAX_TRIES - row.tries if row else 0


def code_sender(config: Config, send_sms: Callable[[dict, str], Awaitable[None]]):
    """The outbox's `sms_code` sender: opens the sealed code and sends it as an SMS (template
    `login_code`, variable `code`) through the same [sms] backend as every other SMS."""
    fernet = _fernet(config)

    async def send(payload: dict, key: str) -> None:
        opened = json.loads(fernet.decrypt(payload["sealed"].encode()))
        sms = {"phone": payload["phone"], "template": "login_code", **opened}
        await send_sms(sms, key)

    return send


def _closed(share: Share, visitor: str, now: dt.datetime) -> Code | None:
    """Why a code would be spent for nothing: the share cannot be claimed (or its draw
    joined) by this mobile now."""
    if draws.is_draw(share) and share.drawn_at is None:
        return draws.join_refusal(share, visitor, now)
    if why := visitors.own_share_refusal(share, visitor) or order_refusal(share, visitor):
        return why
    if draws.is_draw(share) and (why := draws.claim_refusal(share, visitor, now)):
        return why
    return shares.refusal(share, now)


def _sent_since(since: dt.datetime, *whose) -> int:
    """Codes sent after `since` (to a number, a network, for a share; none given: all)."""
    return (
        MobileCode.select(fn.COUNT(MobileCode.id))
        .where(MobileCode.created_at > since, *whose)
        .scalar()
    )


def _hash(config: Config, share_id: int, phone: str, code: str) -> str:
    key = hashlib.sha256(b"mobile-code:" + config.server.cookie_secret.encode()).digest()
    return hmac.new(key, f"{share_id}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def _fernet(config: Config) -> Fernet:
    key = hashlib.sha256(b"sms-seal:" + config.server.cookie_secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))
