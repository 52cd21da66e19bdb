"""Every combination tried: random sequences of every event a share meets — each way to give
(plain, surprise, draw) × free and paid × claims in chat, on the page and with a verified
mobile × pay (and a stale attempt paid too), lapse, join, draw, claim, revoke, cancel,
expire, reminders and the clock — and after every step the share's life holds:

- no order on a share that was not paid for (paid mode), nor any draw entry;
- stock is conserved: each gift's units held by open shares plus those of orders that stand
  are what the gift has committed, never more than the operator's stock;
- the books balance: paid = claimed + refunded + still open, per share and overall, and no
  pay order gives back more than was paid with it;
- a share never gives more than its units, and its claims are its orders;
- its state is one the table knows, `shares list --status` finds it there, and every page
  of it (the gift page, the page outside WeChat, the giver's status page) renders.

Run on SQLite and PostgreSQL, free and paid (hypothesis's stateful testing, against the
domain in its own transactions, as the runner runs it; the pages rendered with the real
templates). Sizes: EXAMPLES sequences of up to STEPS steps per database and mode. The clock
stands still between events, so the checks are skipped after an event that changed nothing
(a refused claim, a sweep with nothing due: about half of them), which they would pass again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import random
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import make_config
from fakes.wechatpay import FakeWeChatPay
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from paying import pay_overrides, run_keys

from bot import users
from bot.app import Clock, Services
from bot.forms.base import Invalid
from bot.forms.delivery import Slot, delivery_slots
from bot.forms.order import OrderAnswers
from bot.gifting import catalogue, claims, draws, facts, fulfilment, life, orders, reminders
from bot.gifting import shares as shares_
from bot.gifting.status import giver_status
from bot.money import paybooks, payments
from storage.db import write_transaction
from storage.models import (
    ALL_MODELS,
    DrawEntry,
    Gift,
    Order,
    PayOrder,
    Refund,
    Share,
)

EXAMPLES, STEPS = 35, 30
GIFTS = ("tea-longjing", "mooncake", "fruit")  # no variants: the order's answers stay plain
GIVERS = ("o_giver_a", "o_giver_b")
PEOPLE = ("o_friend_1", "o_friend_2", "o_friend_3", "tel:+8613700137000", "tel:+8613900139000")
KINDS = ("gift", "surprise", "draw")
_tx = itertools.count(1)
START = dt.datetime(2027, 3, 1, 2, 0)  # a Monday, 10:00 in Shanghai (naive UTC)
REACHED: Counter = Counter()  # what the sequences made happen, across one run


@dataclass
class StillClock(Clock):
    """The bot's clock standing at START + offset: it moves only when an event moves it, so
    an event that changes nothing leaves the moment as it was too (and a replay replays)."""

    def __call__(self) -> dt.datetime:
        return START + self.offset


@pytest.fixture(params=["free", "paid"])
def services(request, db_url, tmp_path):
    with FakeWeChatPay(run_keys()) as pay:  # paid: the keys a merchant needs to start
        overrides = {"shares": {"remind_hours": 12, "swap": "up_to_price"}}
        if request.param == "paid":
            overrides |= pay_overrides(tmp_path, run_keys(), pay)
        config = make_config(db_url, "http://127.0.0.1:9", **overrides)
        started = Services.start(config, clock=StillClock())
        yield started
        started.close()


def answers_for(services: Services, person: str, now: dt.datetime) -> OrderAnswers:
    slot: Slot = delivery_slots(services.config.delivery, now.replace(tzinfo=dt.UTC))[0]
    phone = person.removeprefix("tel:") if person.startswith("tel:") else "+8613800138000"
    return OrderAnswers(
        name="张小红", phone=phone, delivery=slot,
        address={"region": "广东省深圳市南山区", "detail": "科技园南区 8 栋 1201"},
    )  # fmt: skip


class ShareLife(RuleBasedStateMachine):
    def __init__(self, services: Services):
        super().__init__()
        self.s = services
        self.paid_mode = services.config.payments.paid
        self.stock = {g.id: g.stock for g in services.config.gifts}
        self.shares: list[int] = []
        self.attempts: list[str] = []
        self.checked: tuple | None = None  # the state the checks last passed in

    @initialize()
    def fresh_database(self):
        """Each sequence starts afresh, at the same moment (a replay must replay)."""
        self.s.clock.offset = dt.timedelta()
        draws._random = random.Random(2027)  # the draws' luck, replayed alike
        with write_transaction():
            for model in reversed(ALL_MODELS):
                if model is not Gift:
                    model.delete().execute()
            Gift.update(committed=0).execute()
        catalogue.sync(self.s.config.gifts)
        for giver in GIVERS:  # they wrote to the account before they gave
            users.touch(giver, self.now, message=True)

    @property
    def now(self) -> dt.datetime:
        return self.s.clock()

    def share(self, index: int) -> Share | None:
        return Share.get_by_id(self.shares[index % len(self.shares)]) if self.shares else None

    # -- the events ----------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(KINDS), gift=st.sampled_from(GIFTS), giver=st.sampled_from(GIVERS),
        quantity=st.integers(1, 3), draw_minutes=st.sampled_from([6, 30, 600]),
        pay_now=st.sampled_from(["no", "yes", "yes", "in two tabs"]),
    )  # fmt: skip
    def give(self, kind, gift, giver, quantity, draw_minutes, pay_now):
        """A share given; `pay_now` (paid mode): its giver pays at once, as most do, and some
        in two tabs (the second payment is refunded whole)."""
        draw_at = self.now + dt.timedelta(minutes=draw_minutes) if kind == "draw" else None
        create = payments.create_unpaid if self.paid_mode else shares_.create
        try:
            share = create(self.s.config, giver, gift, quantity, "生日快乐", self.now,
                           kind=kind, draw_at=draw_at)  # fmt: skip
        except Invalid:
            return  # out of stock, or the giver's limits
        self.shares.append(share.id)
        REACHED["give"] += 1
        if self.paid_mode and pay_now != "no":
            self.pay(len(self.shares) - 1, stale=pay_now == "in two tabs")

    @precondition(lambda self: self.paid_mode and self.shares)
    @rule(index=st.integers(0, 20), stale=st.booleans())
    def pay(self, index, stale):
        """The giver pays; `stale`: an earlier attempt's payment is notified after this one
        (WeChat Pay's notification of a second tab), which must be refunded whole."""
        share = self.share(index)
        with write_transaction():
            try:
                first = payments.start_attempt(share.token, share.giver_id, self.now)
                second = payments.start_attempt(share.token, share.giver_id, self.now)
            except Invalid:
                return
        numbers = [second.out_trade_no, first.out_trade_no] if stale else [second.out_trade_no]
        for number in numbers:
            with write_transaction():
                outcome = payments.settle_paid(self.s.notices, self.s.config, number,
                                               f"4200{next(_tx):020d}", self.now)  # fmt: skip
            REACHED["pay" if outcome == "paid" else f"{outcome} payment"] += 1
        if stale and outcome == "refund":
            REACHED["stale payment refunded"] += 1

    @precondition(lambda self: self.shares)
    @rule(index=st.integers(0, 20), people=st.lists(st.sampled_from(PEOPLE + GIVERS),
          min_size=1, max_size=3), channel=st.sampled_from(["chat", "web"]),
          swap_to=st.sampled_from(["", "", "mooncake", "fruit", "scarf"]))  # fmt: skip
    def claim(self, index, people, channel, swap_to):
        """Friends claim, mostly a share that looks claimable (a wrong one is refused), some
        taking another gift instead ([shares] swap: a dearer one is refused)."""
        live = (
            Share.select(Share.id)
            .where(~Share.released & (Share.payment != life.UNPAID))
            .order_by(Share.id)  # a replay must pick the same share
        )
        targets = [s.id for s in live] or self.shares
        share = Share.get_by_id(targets[index % len(targets)])
        for person in people:
            answers = answers_for(self.s, person, self.now)
            try:
                orders.place(self.s.notices, share.token, person, answers, channel, self.now,
                             swap_to)  # fmt: skip
                REACHED["claim by mobile" if person.startswith("tel:") else "claim"] += 1
                REACHED["swap"] += bool(swap_to)
            except Invalid as refused:
                REACHED[f"claim refused {refused.code}"] += 1

    @precondition(lambda self: self.shares)
    @rule(index=st.integers(0, 20), person=st.sampled_from(PEOPLE + GIVERS),
          via=st.sampled_from(["web", "chat"]))  # fmt: skip
    def join(self, index, person, via):
        drawn = Share.select(Share.id).where(Share.kind == "draw").order_by(Share.id)
        drawn = [s.id for s in drawn] or self.shares
        try:
            draws.join(Share.get_by_id(drawn[index % len(drawn)]).token, person, via, self.now)
            REACHED["join"] += 1
        except Invalid as refused:
            REACHED[f"join refused {refused.code}"] += 1

    @precondition(lambda self: self.shares)
    @rule(index=st.integers(0, 20))
    def revoke(self, index):
        share = self.share(index)
        with contextlib.suppress(Invalid):
            shares_.revoke(share.giver_id, share.id, self.now)
            REACHED["revoke"] += 1

    @precondition(lambda self: Order.select().exists())
    @rule(pick=st.integers(0, 50), to=st.sampled_from(["cancelled", "shipped", "delivered"]))
    def move_order(self, pick, to):
        numbers = [o.order_no for o in Order.select(Order.order_no).order_by(Order.id)]
        number = numbers[pick % len(numbers)]
        with contextlib.suppress(fulfilment.WrongStatus, fulfilment.NoSuchOrder):
            if to == "shipped":
                fulfilment.ship(self.s.notices, number, self.now, carrier="顺丰", tracking="SF1")
            else:
                fulfilment.move(self.s.notices, number, to, self.now)
            REACHED["cancel" if to == "cancelled" else to] += 1

    @rule(minutes=st.sampled_from([1, 7, 16, 60 * 11, 60 * 30, 60 * 80]), swept=st.booleans())
    def time_passes(self, minutes, swept):
        """The clock moves; `swept`: the background sweep has come by since (it runs every
        minute; between two sweeps a share may be past its time and not yet released)."""
        self.s.clock.offset += dt.timedelta(minutes=minutes)
        if swept:
            self.sweep()

    @rule()
    def sweep(self):
        """What the background sweep does, in its order."""
        lapsing = (
            Share.select()
            .where((Share.payment == life.UNPAID) & (Share.expires_at <= self.now))
            .count()
        )
        REACHED["expire"] += shares_.release_expired(self.now) - lapsing
        REACHED["lapse"] += lapsing
        REACHED["draw"] += draws.draw_due(self.s.notices, self.now)
        REACHED["remind"] += reminders.send_due(self.s.config, self.s.notices, self.now)
        REACHED["refund"] = max(REACHED["refund"], Refund.select().count())

    # -- what must hold after every step ---------------------------------------------------

    @invariant()
    def the_life_holds(self):
        """Every check below (`CHECKS`), unless nothing a check reads has changed since they
        last passed: a refused event, or a sweep with nothing due, leaves every row and the
        clock as they were, and the checks are functions of those alone."""
        seen = state_of_everything(self.now)
        if seen == self.checked:
            return
        for check in CHECKS:
            check(self)
        self.checked = seen

    def nothing_is_given_that_was_not_paid_for(self):
        if not self.paid_mode:
            return
        unpaid = Share.payment != life.PAID
        assert not Order.select().join(Share).where(unpaid).exists()
        assert not DrawEntry.select().join(Share).where(unpaid).exists()
        assert not Share.select().where(unpaid & Share.drawn_at.is_null(False)).exists()

    def stock_is_conserved(self):
        for gift in Gift.select():
            held = sum(
                s.quantity - s.claimed
                for s in Share.select().where((Share.gift == gift.id) & ~Share.released)
            )
            standing = (
                Order.select()
                .where((Order.gift == gift.id) & (Order.status != "cancelled"))
                .count()
            )
            assert gift.committed == held + standing, gift.id
            assert gift.stock == self.stock[gift.id] and 0 <= gift.committed <= gift.stock

    def the_books_balance(self):
        books = paybooks.balance()
        assert books["total"]["balanced"], [r for r in books["shares"] if not r["balanced"]]
        for order in PayOrder.select():
            back = sum(r.amount for r in Refund.select().where(Refund.pay_order == order.id))
            assert back <= (order.amount if order.status == "paid" else 0), order.out_trade_no

    def a_share_never_gives_more_than_its_units(self):
        for share in Share.select():
            made = Order.select().where(Order.share == share.id).count()
            assert made == share.claimed <= share.quantity, share.id
            people = Order.select(Order.recipient).where(Order.share == share.id)
            assert len({o.recipient_id for o in people}) == made  # one each
            assert share.giver_id not in {o.recipient_id for o in people}

    def every_page_renders_a_state_the_table_knows(self):
        now = self.now
        for share in Share.select():
            state = life.state_of(share, now)
            assert state in life.State
            found = Share.select(Share.id).where(shares_.in_status(state.value, now))
            assert share.id in {s.id for s in found}, (share.id, state)
            self.pages_render(share, now)

    def pages_render(self, share: Share, now: dt.datetime) -> None:
        page = self.s.renderer.page
        common = {"sandbox": False, "user": None, "xsrf_form_html": lambda: ""}
        seen = facts.of(share, now)
        for visitor in ("o_friend_1", "tel:+8613700137000"):
            view = claims.view_of(share.token, visitor, now)
            if view.refusal == "own_share":
                continue
            html = page("pages/claim.html", **vars(view), gift=view.gift, **common)
            assert "有效期" not in html or seen.claimable  # a date only while it holds
        outside = claims.view_of(share.token, None, now)
        page("pages/outside.html", **vars(outside), gift=outside.gift, closed=outside.closed,
             mobile=True, error=None, typed="", **common)  # fmt: skip
        status = giver_status(claims.view_of(share.token, None, now).share, now)
        status.draw = draws.seen_by(share, None, now) if draws.is_draw(share) else None
        html = page("pages/share_status.html", **vars(status), gift=status.share.gift, **common)
        if not seen.paid:
            assert "退款" not in html, "money is spoken of only where it moved"


CHECKS = (
    ShareLife.nothing_is_given_that_was_not_paid_for,
    ShareLife.stock_is_conserved,
    ShareLife.the_books_balance,
    ShareLife.a_share_never_gives_more_than_its_units,
    ShareLife.every_page_renders_a_state_the_table_knows,
)


def state_of_everything(now: dt.datetime) -> tuple:
    """Every row of every table, and the clock: what the checks read (a few dozen rows)."""
    return (now, *(tuple(sorted(map(repr, m.select().tuples()))) for m in ALL_MODELS))


def check_all(life_: ShareLife) -> None:
    """Every check, each time (the scripted life: nothing is skipped)."""
    for check in CHECKS:
        check(life_)


@pytest.mark.timeout(900)  # about a minute each on a quiet machine
@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_shares_life_holds_whatever_happens_in_whatever_order(services, monkeypatch):
    REACHED.clear()
    monkeypatch.setattr(draws, "_random", draws._random)  # put back after the run
    run_state_machine_as_test(
        lambda: ShareLife(services),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),  # fmt: skip
    )
    wanted = {"give", "claim", "revoke", "draw"} | (
        {"pay"} if services.config.payments.paid else set()
    )
    assert wanted <= set(REACHED), f"only refusals? {dict(REACHED)}"


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_every_kind_of_event_keeps_the_life_whole_in_one_scripted_life(services, monkeypatch):
    """The events the random runs may reach rarely, each once, in an order that reaches them
    (a draw joined by page, chat and mobile and won; claims by chat, page and mobile; a swap;
    a cancel; a stale payment; a lapse; a withdrawal; an expiry), the invariants after each."""
    REACHED.clear()
    monkeypatch.setattr(draws, "_random", draws._random)
    life_ = ShareLife(services)
    life_.fresh_database()
    paid = services.config.payments.paid
    script = [
        ("give", dict(kind="draw", gift="tea-longjing", giver="o_giver_a", quantity=2,
                      draw_minutes=30, pay_now="in two tabs")),
        ("join", dict(index=0, person="o_friend_1", via="web")),
        ("join", dict(index=0, person="o_friend_2", via="chat")),
        ("join", dict(index=0, person="tel:+8613700137000", via="web")),
        ("time_passes", dict(minutes=60 * 11, swept=True)),  # drawn: two of three win
        ("give", dict(kind="gift", gift="scarf", giver="o_giver_b", quantity=3, draw_minutes=6,
                      pay_now="yes")),
        ("claim", dict(index=1, people=["o_friend_1"], channel="chat", swap_to="")),
        ("claim", dict(index=1, people=["tel:+8613900139000"], channel="web", swap_to="")),
        ("claim", dict(index=1, people=["o_friend_3"], channel="web", swap_to="mooncake")),
        ("claim", dict(index=0, people=list(PEOPLE), channel="web", swap_to="")),  # the winners
        ("move_order", dict(pick=0, to="cancelled")),
        ("move_order", dict(pick=1, to="shipped")),
        ("give", dict(kind="surprise", gift="fruit", giver="o_giver_a", quantity=1,
                      draw_minutes=6, pay_now="no")),
        ("time_passes", dict(minutes=16, swept=True)),  # unpaid: lapses (free: stays open)
        ("give", dict(kind="gift", gift="mooncake", giver="o_giver_b", quantity=2,
                      draw_minutes=6, pay_now="yes")),
        ("revoke", dict(index=3)),  # the mooncakes: nobody claimed them
        ("give", dict(kind="gift", gift="tea-longjing", giver="o_giver_b", quantity=1,
                      draw_minutes=6, pay_now="yes")),
        ("time_passes", dict(minutes=60 * 80, swept=True)),  # the rest expire
    ]  # fmt: skip
    for event, args in script:
        getattr(life_, event)(**args)
        check_all(life_)
    wanted = {"give", "join", "draw", "claim", "claim by mobile", "swap", "cancel", "shipped",
              "revoke", "expire"}  # fmt: skip
    if paid:
        wanted |= {"pay", "stale payment refunded", "lapse", "refund"}
    assert wanted <= set(REACHED), f"{wanted - set(REACHED)} {dict(REACHED)}"
    assert Order.select().where(Order.swapped_from != "").count() == 1
