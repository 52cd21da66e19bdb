"""A share's life at the very moments its rules name, on SQLite and on PostgreSQL: a share is
over at its expiry (not a moment later), a draw is drawn at its time and joined until then,
a paid draw too near its time is moved as long after the payment, and a share bought never
moves without the books that would refund it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
from conftest import ROOT
from helpers import BOTH_DATABASES, browser, claim, monday_morning, say, share_in_chat
from storing import migrated

from bot.codes import Code
from bot.forms.base import Invalid
from bot.forms.draw import DRAW_MIN_MINUTES
from bot.gifting import draws, fulfilment, life, orders, shares
from bot.money import payments
from storage import db as storage
from storage.db import write_transaction
from storage.models import Gift, Order, Share, User, utcnow

MOMENT = dt.timedelta(microseconds=1)


@pytest.fixture
def config(db_url):
    with migrated(db_url) as config:
        User.create(openid="o_giver")
        yield config


@BOTH_DATABASES
def test_a_share_is_over_at_its_expiry_and_its_units_come_back_then(config):
    share = shares.create(config, "o_giver", "coffee", 2, "", utcnow())
    before = Gift.get_by_id("coffee").committed
    assert life.state_of(share, share.expires_at - MOMENT) == life.State.OPEN
    assert life.state_of(share, share.expires_at) == life.State.EXPIRED
    assert shares.release_expired(share.expires_at - MOMENT) == 0
    assert shares.release_expired(share.expires_at) == 1
    assert Gift.get_by_id("coffee").committed == before - 2


@BOTH_DATABASES
def test_a_draw_is_joined_until_its_time_and_drawn_at_it(config):
    at = utcnow() + dt.timedelta(hours=2)
    share = shares.create(config, "o_giver", "coffee", 1, "", utcnow(), kind="draw", draw_at=at)
    assert draws.join_refusal(share, "o_friend", at - MOMENT) is None
    assert draws.join_refusal(share, "o_friend", at) == Code.DRAW_CLOSED
    with write_transaction():
        assert not life.start_draw(share, at - MOMENT)
        assert life.start_draw(share, at)
        assert not life.start_draw(Share.get_by_id(share.id), at), "once"


@BOTH_DATABASES
def test_a_paid_draw_moves_its_time_only_when_nearer_than_the_lead(config):
    lead = dt.timedelta(minutes=DRAW_MIN_MINUTES)
    now = utcnow()
    hold = now + dt.timedelta(minutes=15)
    made = []
    for draw_at in (now + lead, now + lead - MOMENT):
        share = shares.create(
            config, "o_giver", "coffee", 1, "", now - dt.timedelta(hours=1), kind="draw",
            draw_at=draw_at, price=100, hold_until=hold,
        )  # fmt: skip
        with write_transaction():
            assert life.pay(share, now, expire_hours=72, draw_lead=lead)
        made.append((draw_at, Share.get_by_id(share.id)))
    (kept_at, kept), (near_at, moved) = made
    assert kept.draw_at == kept_at and kept.expires_at == kept_at + dt.timedelta(hours=72)
    assert moved.draw_at == now + (near_at - (now - dt.timedelta(hours=1)))
    assert payments.pay_refusal(moved, "o_giver", now) == Code.PAY_DONE


def test_a_share_bought_never_moves_without_the_books_that_refund_it():
    """The chat, pages and sweep import bot.money, which keeps the books; a process that
    forgot would lose refunds, so a paid share's move fails instead."""
    code = (
        "from bot.gifting.life import moves as life\n"
        "from storage.models import Share\n"
        "share = Share(id=7, payment=life.PAID, unit_price=100, quantity=2, claimed=0)\n"
        "try:\n"
        "    life._paid_back(share, 2, 'revoked', None)\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "share 7 was bought, and no books are kept (bot.money)"


@BOTH_DATABASES
def test_operators_filter_shares_by_the_same_state_every_page_reads(config):
    """`shares listing --status S` (a WHERE clause) and the state a page reads (life.state_of)
    agree for a share in every state there is, and each state is met."""
    now = utcnow()
    ago = now - dt.timedelta(hours=config.shares.expire_hours + 1)
    hold = now + dt.timedelta(minutes=15)
    givers = iter(f"o_giver_{n}" for n in range(40))

    def share(quantity=1, at=now, **kind) -> Share:
        giver = next(givers)
        User.create(openid=giver)
        return shares.create(config, giver, "coffee", quantity, "", at, **kind)

    def drawn(winners: int, quantity=2, at=now) -> Share:
        made = share(quantity, at - dt.timedelta(hours=2), kind="draw", draw_at=at)
        with write_transaction():
            assert life.start_draw(made, at)
            life.settle_draw(made, winners, at)
        return made

    def claimed(made: Share, units=1) -> Share:
        with write_transaction():
            for _ in range(units):
                life.take_unit(made, now)
        return made

    share()  # open
    claimed(share())  # claimed
    share(2, at=ago)  # expired, its stock not back yet
    share(at=ago - dt.timedelta(hours=1))  # expired, released below
    shares.release_expired(ago + dt.timedelta(hours=config.shares.expire_hours, minutes=30))
    shares.revoke((made := share(2)).giver_id, made.id, now)  # revoked
    shares.revoke((made := share(price=100, hold_until=hold)).giver_id, made.id, now)
    share(price=100, hold_until=hold)  # unpaid
    share(price=100, hold_until=now - dt.timedelta(minutes=1))  # lapsed, below
    shares.release_expired(now)
    share(at=now - dt.timedelta(hours=config.shares.expire_hours))  # expired at this moment
    share(kind="draw", draw_at=now + dt.timedelta(hours=1))  # drawing
    drawn(winners=1)  # drawn
    drawn(winners=0)  # a draw nobody could win: expired
    claimed(drawn(winners=1))  # claimed
    drawn(winners=1, at=ago)  # drawn, then its winners' time ran out: expired
    paid = share(price=100, hold_until=hold)
    with write_transaction():
        assert life.pay(paid, now, config.shares.expire_hours, dt.timedelta(minutes=5))  # open

    read = {s.id: shares.status(s, now) for s in Share.select()}
    assert set(read.values()) == set(shares.STATUSES), "every state met"
    for wanted in shares.STATUSES:
        filtered = {row["id"] for row in shares.listing(now, wanted)}
        assert filtered == {i for i, state in read.items() if state == wanted}, wanted


@BOTH_DATABASES
def test_a_cancelled_orders_unit_goes_back_to_stock_and_its_claim_stays_on_record(bot):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="2")
    before = Gift.get_by_id("tea-longjing").committed
    assert claim(bot, browser(bot, "o_friend"), token).status_code == 200
    say(bot, "o_friend", "谢谢 好喜欢")
    order = Order.get()
    fulfilment.move(bot.services.notices, order.order_no, "cancelled", bot.clock())
    assert Gift.get_by_id("tea-longjing").committed == before - 1
    assert Share.get().claimed == 1, "the claim stays on record"
    assert Gift.get_by_id("coffee").committed == 0, "no other gift's stock"
    assert [o.order_no for o in orders.for_export("cancelled")] == [order.order_no]
    assert orders.for_export("placed") == []
    other = Share.get(Share.token == share_in_chat(bot, giver="o_other")).id
    news = ({order.share_id: ["好喜欢"]}, {order.share_id: 1})
    assert orders.news_for([order.share_id, other]) == news
    assert orders.news_for([other]) == ({}, {}), "another share's cancel is not this one's"


@BOTH_DATABASES
def test_an_order_number_drawn_twice_is_drawn_again_five_times_at_most(bot, monkeypatch):
    monday_morning(bot)
    token = share_in_chat(bot, quantity="3")
    drawn = iter("22222" + "22222" + "33333" + "22222" * 5 + "44444")

    class Tails:  # the tails the random source gives, in turn
        @staticmethod
        def choice(alphabet: str) -> str:
            return next(drawn)

    monkeypatch.setattr(orders, "secrets", Tails)
    assert claim(bot, browser(bot, "o_a"), token).status_code == 200
    assert claim(bot, browser(bot, "o_b"), token).status_code == 200
    numbers = [o.order_no[-5:] for o in Order.select().order_by(Order.id)]
    assert numbers == ["22222", "33333"], "the clash drawn again"
    assert claim(bot, browser(bot, "o_c"), token).status_code == 500  # five clashes: no order
    assert Order.select().count() == 2 and Share.get().claimed == 2
    assert next(drawn) == "4", "five tries, then it gave up"


@BOTH_DATABASES
def test_a_giver_may_share_again_an_hour_after_the_oldest_of_their_last_ten(config):
    now = utcnow()
    first = now - dt.timedelta(minutes=50)
    for minute in range(10):
        shares.create(config, "o_giver", "coffee", 1, "", first + dt.timedelta(minutes=minute))
    limited = shares.allowance(config, "o_giver", now)
    assert (limited.shares_this_hour, limited.held, limited.units) == (10, 10, 10)
    assert limited.next_share_at == first + dt.timedelta(hours=1)
    assert limited.refusal().code == Code.SHARE_RATE
    again = shares.allowance(config, "o_giver", first + dt.timedelta(hours=1, microseconds=1))
    assert again.next_share_at is None and again.refusal() is None


@BOTH_DATABASES
def test_a_giver_with_one_unit_left_may_still_share_one_and_then_none(config):
    User.create(openid="o_other")
    shares.create(config, "o_other", "tea-longjing", 19, "", utcnow())
    left = shares.allowance(config, "o_other", utcnow())
    assert (left.held, left.units) == (19, 1)
    lazy = shares.LazyAllowance(config, "o_other", utcnow())
    assert left.refusal() is None and lazy.refusal() is None and lazy.units == 1
    assert left.refusal(2).code == Code.GIVER_LIMIT
    shares.create(config, "o_other", "tea-longjing", 1, "", utcnow())
    full = shares.allowance(config, "o_other", utcnow())
    assert (full.held, full.units) == (20, 0) and full.refusal().code == Code.GIVER_LIMIT


@BOTH_DATABASES
def test_a_giver_withdraws_exactly_the_share_named_and_only_their_own(config):
    older = shares.create(config, "o_giver", "coffee", 1, "", utcnow())
    newer = shares.create(config, "o_giver", "coffee", 1, "", utcnow())
    User.create(openid="o_other")
    theirs = shares.create(config, "o_other", "coffee", 1, "", utcnow())
    assert shares.revoke("o_giver", newer.id, utcnow()).id == newer.id
    with pytest.raises(Invalid) as refused:
        shares.revoke("o_giver", theirs.id, utcnow())
    assert refused.value.code == Code.REVOKE_WHICH
    revoked = {s.id for s in Share.select().where(Share.revoked_at.is_null(False))}
    assert revoked == {newer.id}, "not the older one, not another giver's"
    assert [row["id"] for row in shares.listing(utcnow(), giver="o_other")] == [theirs.id]
    assert {row["id"] for row in shares.listing(utcnow())} == {older.id, newer.id, theirs.id}


@BOTH_DATABASES
def test_my_gifts_lists_the_ten_newest(config):
    start = utcnow() - dt.timedelta(hours=3)
    made = [
        shares.create(config, "o_giver", "coffee", 1, "", start + dt.timedelta(minutes=15 * n))
        for n in range(11)
    ]
    listed = [s.id for s in shares.of_giver("o_giver")]
    assert listed == [s.id for s in reversed(made[1:])]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_sweeps_racing_return_each_expired_shares_units_once(config):
    """Four workers' sweeps at once over the same expired shares (PostgreSQL: each its own
    connection and transaction; SQLite has one writer): each share's row is locked and looked
    at again, so stock comes back once."""
    ago = utcnow() - dt.timedelta(hours=config.shares.expire_hours + 1)
    for n in range(6):
        User.create(openid=f"o_g{n}")
        shares.create(config, f"o_g{n}", "coffee", 2, "", ago)
    before = Gift.get_by_id("coffee").committed
    start = threading.Barrier(4)
    released = []

    def sweep():
        storage.db.connect(reuse_if_open=True)
        start.wait()
        released.append(shares.release_expired(utcnow()))
        storage.db.close()

    workers = [threading.Thread(target=sweep) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert Gift.get_by_id("coffee").committed == before - 12
    assert sum(released) == 6, "each share released by one sweep"


@BOTH_DATABASES
def test_operators_are_warned_of_units_a_giver_holds_unclaimed_not_of_those_claimed(config, caplog):
    caplog.set_level("WARNING", logger="gift_bot.shares")
    first = shares.create(config, "o_giver", "tea-longjing", 5, "", utcnow())  # 5 of 40 held
    assert [r.held for r in caplog.records] == [5]
    with write_transaction():
        for _ in range(2):
            life.take_unit(first, utcnow())
    caplog.clear()
    shares.create(config, "o_giver", "tea-longjing", 1, "", utcnow())  # 3 + 1 held: a tenth
    assert caplog.records == []


def test_my_orders_lists_the_ten_newest(bot):
    monday_morning(bot)
    friend = browser(bot, "o_friend")
    for n in range(11):
        token = share_in_chat(bot, giver=f"o_giver_{n}")
        assert claim(bot, friend, token).status_code == 200
        bot.clock.offset += dt.timedelta(minutes=1)
    made = [o.id for o in Order.select().order_by(Order.created_at.desc())]
    assert [o.id for o in orders.of_recipient("o_friend")] == made[:10]
