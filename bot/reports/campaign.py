"""How a campaign went: the figures of `python -m bot report`, read-only queries, one home.

Usage::

    window = Window.of(config, since=dt.date(2026, 12, 1), until=None)  # days in the zone
    figures(config, window, now)
    # {"window": {...}, "funnel": {"shares": 12, "units": 30, "opened": 41, …},
    #  "days": [{"date": "2026-12-01", "shares": 3, "claims": 5, "shipped": 0}, …],
    #  "gifts": [{"id", "name", "shared", "claimed", "expired", "revoked", "claim_rate"}, …],
    #  "money": {"paid_fen", "refunded_fen", "net_fen", "refunds_done_fen"} or None (free mode),
    #  "draws": {"draws", "entrants", "winners", "claimed", "by_draw": [...]}}

The window picks the shares given on its days (in `[delivery] timezone`, both ends included),
and everything follows those shares: who opened them, their orders whatever day they came,
their money. A share whose payment never came (unpaid, lapsed) was never given and is left
out. The funnel: shares → units offered → opened (each person once per share: a page seen, a
draw joined or an order) → claimed (units taken, cancelled orders included) → ordered
(orders that stand) → shipped → delivered → thanked. Money follows bot/money/paybooks.py's
books: paid = pay orders paid, refunded = every refund owed, net = paid − refunded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from peewee import SQL, fn

from bot.config import Config
from bot.gifting import shares
from bot.gifting.life import PAID
from storage.db import is_postgres
from storage.models import DrawEntry, Gift, Order, PayOrder, Refund, Share, ShareVisit

FUNNEL = ("shares", "units", "opened", "claimed", "ordered", "shipped", "delivered", "thanked")
BY_DRAW = 20  # the latest draws listed one by one


@dataclass(frozen=True)
class Window:
    since: dt.date | None
    until: dt.date | None
    zone: ZoneInfo

    @classmethod
    def of(cls, config: Config, since: dt.date | None = None, until: dt.date | None = None):
        return cls(since, until, ZoneInfo(config.delivery.timezone))

    def utc(self, day: dt.date) -> dt.datetime:
        """The (naive UTC) instant the day starts in the zone."""
        local = dt.datetime.combine(day, dt.time(), tzinfo=self.zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def day_of(self, when: dt.datetime) -> dt.date:
        return when.replace(tzinfo=dt.UTC).astimezone(self.zone).date()

    def given(self):
        """The shares of the window: given (not waiting for, nor short of, a payment)."""
        where = Share.payment.in_(("", PAID))
        if self.since:
            where &= Share.created_at >= self.utc(self.since)
        if self.until:
            where &= Share.created_at < self.utc(self.until + dt.timedelta(days=1))
        return where


def figures(config: Config, window: Window, now: dt.datetime) -> dict:
    cohort = Share.select(Share.id).where(window.given())
    return {
        "window": _window(window, now),
        "funnel": funnel(window, cohort),
        "days": days(window, cohort, now),
        "gifts": gifts(window, now),
        "money": money(cohort) if config.payments.paid else None,
        "draws": draws(window, cohort),
    }


def _window(window: Window, now: dt.datetime) -> dict:
    return {
        "since": window.since.isoformat() if window.since else None,
        "until": window.until.isoformat() if window.until else None,
        "timezone": window.zone.key,
        "made_at": now.replace(tzinfo=dt.UTC).astimezone(window.zone).isoformat("T", "seconds"),
    }


def funnel(window: Window, cohort) -> dict[str, int]:
    given = Share.select(fn.COUNT(Share.id), fn.COALESCE(fn.SUM(Share.quantity), 0))
    count, units = given.where(window.given()).scalar(as_tuple=True)
    opened = (
        ShareVisit.select(ShareVisit.share, ShareVisit.openid).where(ShareVisit.share.in_(cohort))
        | DrawEntry.select(DrawEntry.share, DrawEntry.openid).where(DrawEntry.share.in_(cohort))
        | Order.select(Order.share, Order.recipient).where(Order.share.in_(cohort))
    )
    orders = Order.select().where(Order.share.in_(cohort))
    standing = orders.where(Order.status != "cancelled")
    return {
        "shares": count,
        "units": int(units),
        "opened": opened.count(),
        "claimed": orders.count(),
        "ordered": standing.count(),
        "shipped": standing.where(Order.shipped_at.is_null(False)).count(),
        "delivered": standing.where(Order.status == "delivered").count(),
        "thanked": orders.where(Order.thanks != "").count(),
    }


def days(window: Window, cohort, now: dt.datetime) -> list[dict]:
    """Per day of the window: shares given, claims (orders placed) and orders shipped."""
    counted = {
        "shares": _per_day(window, Share.created_at, window.given()),
        "claims": _per_day(window, Order.created_at, Order.share.in_(cohort)),
        "shipped": _per_day(
            window, Order.shipped_at, Order.share.in_(cohort) & Order.shipped_at.is_null(False)
        ),
    }
    seen = sorted({day for per_day in counted.values() for day in per_day})
    first = window.since or (seen[0] if seen else window.day_of(now))
    last = window.until or max([window.day_of(now), *seen])
    span = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        {
            "date": day.isoformat(),
            **{name: per_day.get(day, 0) for name, per_day in counted.items()},
        }
        for day in span
    ]


def _per_day(window: Window, column, where) -> dict[dt.date, int]:
    """Counts by local day: grouped by the UTC hour in the database, each hour then placed in
    the zone's day it falls on (exact for zones a whole number of hours from UTC)."""
    hour = (
        fn.to_char(column, "YYYY-MM-DD HH24")
        if is_postgres()
        else fn.strftime("%Y-%m-%d %H", column)
    ).coerce(False)  # text, not read back as the column's datetime
    query = column.model.select(hour.alias("hour"), fn.COUNT(SQL("*"))).where(where).group_by(hour)
    by_day: dict[dt.date, int] = {}
    for text, count in query.tuples():
        day = window.day_of(dt.datetime.strptime(text, "%Y-%m-%d %H"))
        by_day[day] = by_day.get(day, 0) + count
    return by_day


def gifts(window: Window, now: dt.datetime) -> list[dict]:
    """Per gift: units shared, claimed, returned unclaimed at the expiry or by a revoke."""
    left = fn.COALESCE(fn.SUM(Share.quantity - Share.claimed), 0)

    def by_gift(*columns, where=None):
        query = Share.select(Share.gift, *columns).where(window.given())
        if where is not None:
            query = query.where(where)  # peewee ANDs a second where
        return {gift_id: rest for gift_id, *rest in query.group_by(Share.gift).tuples()}

    given = by_gift(fn.SUM(Share.quantity), fn.SUM(Share.claimed))
    expired = by_gift(left, where=shares.in_status("expired", now))
    revoked = by_gift(left, where=shares.in_status("revoked", now))
    names = dict(Gift.select(Gift.id, Gift.name).where(Gift.id.in_(list(given))).tuples())
    rows = []
    for gift_id, (shared, claimed) in given.items():
        shared, claimed = int(shared or 0), int(claimed or 0)
        rows.append(
            {
                "id": gift_id, "name": names.get(gift_id, gift_id), "shared": shared,
                "claimed": claimed, "expired": int(expired.get(gift_id, [0])[0]),
                "revoked": int(revoked.get(gift_id, [0])[0]),
                "claim_rate": round(claimed / shared, 3) if shared else 0.0,
            }
        )  # fmt: skip
    return sorted(rows, key=lambda r: (-r["shared"], r["id"]))


def money(cohort) -> dict[str, int]:
    """In fen, as the books count it (bot/money/paybooks.py): what was paid for the window's
    shares, what is owed back (refunds_done: what WeChat Pay confirmed), and the net."""

    def total(column, where) -> int:
        return int(column.model.select(fn.COALESCE(fn.SUM(column), 0)).where(where).scalar())

    paid = total(PayOrder.amount, PayOrder.share.in_(cohort) & (PayOrder.status == "paid"))
    refunded = total(Refund.amount, Refund.share.in_(cohort))
    done = total(Refund.amount, Refund.share.in_(cohort) & (Refund.status == "success"))
    return {"paid_fen": paid, "refunded_fen": refunded, "net_fen": paid - refunded,
            "refunds_done_fen": done}  # fmt: skip


def draws(window: Window, cohort) -> dict:
    """The window's draws: how many joined, won and ordered; the latest one by one."""
    drawn = Share.select(Share.id).where(window.given() & (Share.kind == "draw"))
    entrants = dict(_count(DrawEntry, DrawEntry.share, DrawEntry.share.in_(drawn)))
    winners = dict(_count(DrawEntry, DrawEntry.share, DrawEntry.share.in_(drawn) & DrawEntry.won))
    claimed = dict(_count(Order, Order.share, Order.share.in_(drawn)))
    latest = (
        Share.select(Share.id, Share.created_at, Share.drawn_at, Gift.name)
        .join(Gift)
        .where(window.given() & (Share.kind == "draw"))
        .order_by(Share.created_at.desc(), Share.id.desc())
    )
    ids = [s.id for s in drawn]
    return {
        "draws": len(ids),
        "entrants": sum(entrants.values()),
        "winners": sum(winners.values()),
        "claimed": sum(claimed.values()),
        "by_draw": [
            {
                "share_id": s.id,
                "gift": s.gift.name,
                "given_on": window.day_of(s.created_at).isoformat(),
                "drawn": s.drawn_at is not None,
                "entrants": entrants.get(s.id, 0),
                "winners": winners.get(s.id, 0),
                "claimed": claimed.get(s.id, 0),
            }
            for s in latest.limit(BY_DRAW)
        ],  # fmt: skip
    }


def _count(model, column, where):
    return model.select(column, fn.COUNT(model.id)).where(where).group_by(column).tuples()
