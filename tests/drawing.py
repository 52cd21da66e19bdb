"""A draw (抽奖) drawn in a test the way the background sweep draws it.

Usage in a test module::

    from drawing import draw_now

    draw_now(bot)    # the one share's draw time passed; drawn once (none if withdrawn), a
                     # second look and a sweep find nothing more; its notices sent
"""

from __future__ import annotations

import datetime as dt

from bot.gifting import draws
from storage.models import Outbox, Share


def draw_now(bot) -> None:
    """Move past the draw time and draw what is due, as the background sweep does; a second
    look, and the sweep after it, find nothing left to draw and queue nothing more."""
    share = Share.get()
    bot.clock.offset += share.draw_at - bot.clock() + dt.timedelta(minutes=1)
    services = bot.services
    drawn = bot.run(services.db.write(draws.draw_due, services.notices, bot.clock()))
    assert drawn == (0 if share.revoked_at else 1)
    assert (Share.get_by_id(share.id).drawn_at is not None) == (share.revoked_at is None)
    queued = Outbox.select().count()
    assert bot.run(services.db.write(draws.draw_due, services.notices, bot.clock())) == 0
    bot.run(services.sweep_once())
    assert Outbox.select().count() == queued
    bot.drain()
