"""Users are recorded on first contact; OpenID is the login.

Usage::

    touch("o_abc")                       # first_seen on insert, last_seen always
    touch("o_abc", subscribed=True)      # a subscribe event
"""

from __future__ import annotations

from storage.models import User, utcnow


def touch(openid: str, subscribed: bool | None = None) -> None:
    now = utcnow()
    update = {User.last_seen: now}
    if subscribed is True:
        update.update({User.subscribed: True, User.unsubscribed_at: None})
    elif subscribed is False:
        update.update({User.subscribed: False, User.unsubscribed_at: now})
    row = {"openid": openid, "first_seen": now, "last_seen": now, "subscribed": bool(subscribed)}
    if subscribed is False:
        row["unsubscribed_at"] = now
    User.insert(**row).on_conflict(conflict_target=[User.openid], update=update).execute()
