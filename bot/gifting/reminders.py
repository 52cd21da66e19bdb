"""Reminders before a share expires, each sent exactly once however many workers look.

Usage::

    record_visit(share, "o_friend", now)    # someone known opened the share and may claim it
    send_due(config, notices, now)          # the background sweep: queue what is due

`[shares] remind_hours` before a share expires with units left, its giver gets one reminder
(what is left, when it expires, the link again), and so does each person who opened it and
has not ordered (by whichever channel reaches them: bot/outgoing/channels.py, an SMS to a
visitor known by a verified mobile). A reminder is claimed with a guarded UPDATE (`reminded_at IS NULL`) in the
transaction that queues it, and its outbox key is unique: two workers, a restart or a second
sweep cannot send it twice. A share whose whole life is shorter than the reminder time gets
none (it would be "reminded" at its birth). With no channel to a person the reminder is
marked skipped with the reason (bot/outgoing/messaging.py).
"""

from __future__ import annotations

import datetime as dt

from bot.config import Config
from bot.gifting import catalogue, life, surprise
from bot.outgoing.notices import Notices
from storage import share_reads
from storage.db import write_transaction
from storage.models import Order, Share, ShareVisit


def record_visit(share: Share, openid: str, now: dt.datetime) -> None:
    """Remember that `openid` opened this share (once; the giver does not count)."""
    if openid == share.giver_id:
        return
    share_reads.record_visit(share.id, openid, now)


def send_due(config: Config, notices: Notices, now: dt.datetime) -> int:
    """Queue every reminder due now; returns how many."""
    hours = config.shares.remind_hours
    if hours <= 0:
        return 0
    horizon = now + dt.timedelta(hours=hours)
    due = (
        ~Share.released
        & Share.revoked_at.is_null()
        & (Share.payment != life.UNPAID)  # its link works only once paid: nothing to forward
        & (Share.expires_at > now)
        & (Share.expires_at <= horizon)
        & (Share.claimed < Share.quantity)
    )
    before = dt.timedelta(hours=hours)

    def lives_longer(share: Share) -> bool:  # in Python: date arithmetic differs per database
        return share.expires_at - share.created_at > before

    sent = 0
    for share in Share.select().where(due & Share.reminded_at.is_null()):
        if lives_longer(share):
            sent += _remind_giver(notices, share.id, now)
    visits = (
        ShareVisit.select(ShareVisit, Share)
        .join(Share)
        .where(due & ShareVisit.reminded_at.is_null())
    )
    for visit in visits:
        if lives_longer(visit.share):
            sent += _remind_visitor(notices, visit, now)
    return sent


def _remind_giver(notices: Notices, share_id: int, now: dt.datetime) -> int:
    with write_transaction():
        claimed = (
            Share.update(reminded_at=now)
            .where((Share.id == share_id) & Share.reminded_at.is_null())
            .execute()
        )
        if claimed != 1:
            return 0  # another worker has it
        share = Share.get_by_id(share_id)
        share.gift = catalogue.get(share.gift_id)
        paid = share.payment == life.PAID  # what is left goes back as money only when it was paid
        notices.share_reminder(share, refund=share.unit_price * share.left if paid else 0)
        return 1


def _remind_visitor(notices: Notices, visit: ShareVisit, now: dt.datetime) -> int:
    with write_transaction():
        claimed = (
            ShareVisit.update(reminded_at=now)
            .where((ShareVisit.id == visit.id) & ShareVisit.reminded_at.is_null())
            .execute()
        )
        if claimed != 1:
            return 0
        ordered = Order.select().where(
            (Order.share == visit.share_id) & (Order.recipient == visit.openid)
        )
        if ordered.exists():
            return 0  # they claimed it after all: nothing to remind
        share = visit.share
        share.gift = catalogue.get(share.gift_id)
        notices.visit_reminder(share, visit.openid, surprise.as_seen(share))
        return 1
