"""Users are recorded on first contact; OpenID is the login.

Usage::

    touch("o_abc")                            # first_seen on insert, last_seen always
    touch("o_abc", now, subscribed=True)      # a subscribe event
    in_window("o_abc", now)                   # may the account still message them?
"""

from __future__ import annotations

import datetime as dt

from storage.models import User, utcnow


def touch(
    openid: str,
    now: dt.datetime | None = None,
    subscribed: bool | None = None,
    message: bool = False,
) -> None:
    """Record the user; `message`: they wrote to the account (a follow or unfollow is an event
    of theirs too), which opens WeChat's 48-hour window for customer-service messages."""
    now = now or utcnow()
    update = {User.last_seen: now}
    if message:
        update[User.last_message_at] = now
    if subscribed is True:
        update.update({User.subscribed: True, User.unsubscribed_at: None})
    elif subscribed is False:
        update.update({User.subscribed: False, User.unsubscribed_at: now})
    row = {"openid": openid, "first_seen": now, "last_seen": now, "subscribed": bool(subscribed)}
    if message:
        row["last_message_at"] = now
    if subscribed is False:
        row["unsubscribed_at"] = now
    User.insert(**row).on_conflict(conflict_target=[User.openid], update=update).execute()


def in_window(openid: str, now) -> bool:
    """Whether WeChat still lets the account message this user (48 hours since theirs)."""
    last = User.select(User.last_message_at).where(User.openid == openid).scalar()
    return last is not None and now - last < WINDOW


WINDOW = dt.timedelta(hours=48)
