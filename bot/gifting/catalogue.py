"""The gift catalogue: synced from `[[gifts]]`, read by the chat, the pages and the CLI.

Usage::

    report = sync(config.gifts)      # SyncReport(added=[...], changed=[...], retired=[...], ...)
    for number, gift in enumerate(active(), 1): ...
    gift_by_number(3)                # the third gift as listed, or None

Stock: `Gift.stock` is what the operator makes available; `Gift.committed` is
what shares hold (open reservations plus units already ordered). A sync never
sets stock below what is committed, so a reservation is never lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field

from peewee import fn

from bot import config as cfg
from storage import hot
from storage.db import locked, write_transaction
from storage.models import Gift, Order, Share, db, utcnow

SYNCED = ("position", "name", "price", "description", "image", "variants", "stock")


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # stock raised to what shares already hold

    NOTHING = "catalogue up to date"

    def lines(self) -> list[str]:
        out = [f"added {gid}" for gid in self.added]
        out += [f"changed {gid}" for gid in self.changed]
        out += [f"retired {gid}" for gid in self.retired]
        out += [f"kept stock of {note}" for note in self.kept]
        return out or [self.NOTHING]


class _DryRun(Exception):
    """Raised to roll back a sync that was only to say what it would change."""


def sync(gifts: list[cfg.Gift], dry_run: bool = False) -> SyncReport:
    """Make the Gift table match the config, in one transaction (rolled back when dry)."""
    report = SyncReport()
    with contextlib.suppress(_DryRun):  # the dry run's transaction rolled back on purpose
        _sync(gifts, report, dry_run)
    return report


def _sync(gifts: list[cfg.Gift], report: SyncReport, dry_run: bool) -> None:
    with write_transaction():
        existing = {g.id: g for g in locked(Gift.select())}
        for position, item in enumerate(gifts):
            wanted = {
                "position": position,
                "name": item.name,
                "price": item.price,
                "description": item.description,
                "image": item.image,
                "variants": list(item.variants),
                "stock": item.stock,
            }
            row = existing.pop(item.id, None)
            if row is None:
                Gift.create(id=item.id, active=True, **wanted)
                report.added.append(item.id)
                continue
            if item.stock < row.committed:
                report.kept.append(f"{item.id} at {row.committed} (config {item.stock})")
                wanted["stock"] = row.committed
            changed = [k for k, v in wanted.items() if getattr(row, k) != v]
            if changed or not row.active:
                Gift.update(active=True, updated_at=utcnow(), **wanted).where(
                    Gift.id == item.id
                ).execute()
                if changed != ["position"] or not row.active:  # moved up a place: not news
                    report.changed.append(item.id)
        for gid, row in existing.items():
            if row.active:
                Gift.update(active=False, updated_at=utcnow()).where(Gift.id == gid).execute()
                report.retired.append(gid)
        hot.catalogue_changed()  # the version this transaction may have read moved (trigger)
        if dry_run:
            raise _DryRun


def active(version: int | None = None) -> list[Gift]:
    """The gifts on offer, in catalogue order: the same list object until the catalogue
    changes (the database's catalogue version moves), so callers may cache what they make of
    it by its identity. Treat the gifts as read-only. `version`: the catalogue's version, read
    already by the caller's statement."""
    global _active
    key = (id(db.obj), hot.catalogue_version() if version is None else version)
    cached_key, cached = _active  # one tuple, swapped whole: threads never see half of it
    if cached_key != key:
        cached = list(Gift.select().where(Gift.active).order_by(Gift.position, Gift.id))
        _active = (key, cached)
    return cached


_active: tuple = (None, [])  # (the database and catalogue version it was read at, the list)


def gift_by_number(number: int) -> Gift | None:
    gifts = active()
    return gifts[number - 1] if 1 <= number <= len(gifts) else None


def get(gift_id: str, version: int | None = None) -> Gift | None:
    """A gift on offer from the cached catalogue; one retired since is read afresh."""
    gift = next((g for g in active(version) if g.id == gift_id), None)
    return gift or Gift.get_or_none(Gift.id == gift_id)


def listing(now: dt.datetime) -> list[dict]:
    """Each gift on offer for operators: stock free to share, units held by open shares
    (`reserved`), units ordered and not cancelled (`claimed`, also by variant)."""
    held = dict(
        Share.select(Share.gift, fn.SUM(Share.quantity - Share.claimed))
        .where(~Share.released & (Share.expires_at > now))
        .group_by(Share.gift)
        .tuples()
    )
    ordered = dict(
        Order.select(Order.gift, fn.COUNT(Order.id))
        .where(Order.status != "cancelled")
        .group_by(Order.gift)
        .tuples()
    )
    by_variant: dict[str, dict[str, int]] = {}
    for gift_id, variant, count in (
        Order.select(Order.gift, Order.variant, fn.COUNT(Order.id))
        .where((Order.status != "cancelled") & (Order.variant != ""))
        .group_by(Order.gift, Order.variant)
        .tuples()
    ):
        by_variant.setdefault(gift_id, {})[variant] = count
    return [
        {
            "id": gift.id,
            "name": gift.name,
            "price": gift.price,
            "stock": gift.available,
            "total_stock": gift.stock,
            "reserved": held.get(gift.id, 0),
            "claimed": ordered.get(gift.id, 0),
            "committed": gift.committed,
            "variants": gift.variants,
            "claimed_by_variant": {v: by_variant.get(gift.id, {}).get(v, 0) for v in gift.variants},
            "active": gift.active,
        }
        for gift in active()
    ]
