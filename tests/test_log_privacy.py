"""No log line names a person (review 2, F5): draws, reminders and the outbox, whatever they
send, retry or skip, show an OpenID only as its hash (bot/logs.py)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

import pytest
from helpers import BOTH_DATABASES, browser, confirm_card, share_in_chat, xsrf

from bot import logs
from storage.models import Share

pytestmark = BOTH_DATABASES


def openid() -> str:
    """An OpenID as WeChat writes one: 28 characters, new for each test (the claim page
    remembers visits per process, by share id and OpenID)."""
    return "o" + secrets.token_urlsafe(21)[:27]


class Kept(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records():
    """Every record the bot's loggers write (theirs at debug, everyone's at info)."""
    kept, root, ours = Kept(), logging.getLogger(), logging.getLogger("gift_bot")
    levels = root.level, ours.level
    root.addHandler(kept)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    yield kept.records
    root.removeHandler(kept)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def at(bot, when: dt.datetime) -> None:
    bot.clock.offset += when - bot.clock()


def sweep(bot) -> None:
    bot.run(bot.services.sweep_once())
    bot.drain()


def join_on_page(bot, openid: str, token: str) -> None:
    phone = browser(bot, openid)
    page = phone.get(f"{bot.url}/claim/{token}", timeout=10)
    joined = phone.post(f"{bot.url}/claim/{token}/join", data={"_xsrf": xsrf(page)}, timeout=10)
    assert joined.status_code == 200, joined.text


def test_draws_reminders_and_the_outbox_never_log_an_openid(bot, records):
    giver, web_visitor, chat_visitor, chat_joiner = (openid() for _ in range(4))
    page_joiners = (openid(), openid())
    people = (giver, web_visitor, chat_visitor, chat_joiner, *page_joiners)
    start = bot.clock()
    gift = share_in_chat(bot, giver=giver, quantity="3")
    assert browser(bot, web_visitor).get(f"{bot.url}/claim/{gift}", timeout=10).status_code == 200
    bot.wx.text(chat_visitor, f"领取 {gift}")
    bot.wx.text(chat_visitor, "取消")

    for text in ("2", "抽奖", "1", "跳过", "跳过"):
        bot.wx.text(giver, text)
    draw = confirm_card(bot.wx, giver)["Url"].rsplit("/", 1)[1]
    for joiner in page_joiners:
        join_on_page(bot, joiner, draw)
    bot.wx.text(chat_joiner, f"领取 {draw}")

    # The draw's messages: the chat joiner's is sent (after one retry), the page joiners' are
    # skipped (they never wrote to the account: outside WeChat's window).
    bot.fake_wechat.fail_next("/cgi-bin/message/custom/send", -1, to=chat_joiner)
    at(bot, Share.get(Share.token == draw).draw_at + dt.timedelta(minutes=1))
    sweep(bot)
    at(bot, bot.clock() + dt.timedelta(hours=1))
    bot.drain()
    # The gift's reminders: the chat visitor wrote again (sent), the web visitor never (skipped).
    at(bot, start + dt.timedelta(hours=30))
    bot.wx.text(chat_visitor, "礼品")
    at(bot, start + dt.timedelta(hours=48.5))
    sweep(bot)

    lines = [(record, logs.formatter(json_lines=True).format(record)) for record in records]
    for record, line in lines:
        for person in people:
            assert person not in line and person not in str(record.__dict__), (person, line)

    def keys(event: str, prefix: str) -> list[str]:
        return [
            r.key for r, _ in lines
            if r.getMessage() == event and getattr(r, "key", "").startswith(prefix)
        ]  # fmt: skip

    draw_id, gift_id = Share.get(Share.token == draw).id, Share.get(Share.token == gift).id
    sent, retried = keys("outbox sent", "draw:"), keys("outbox will retry", "draw:")
    (outcome,) = [key for key in sent if key.endswith(shown(chat_joiner))]
    assert outcome.rsplit(":", 1)[0] in (f"draw:won:{draw_id}", f"draw:lost:{draw_id}")
    assert retried == [outcome], "the failed first send's line, its OpenID hashed too"
    assert sorted(key.rsplit(":", 1)[1] for key in keys("outbox skipped", "draw:")) == sorted(
        shown(joiner) for joiner in page_joiners
    )
    assert keys("outbox sent", "remind:visit:") == [f"remind:visit:{gift_id}:{shown(chat_visitor)}"]
    assert keys("outbox skipped", "remind:visit:") == [
        f"remind:visit:{gift_id}:{shown(web_visitor)}"
    ]


def shown(person: str) -> str:
    """How a log line names a person: `#` and the hash of their OpenID."""
    return "#" + logs.hashed(person)
