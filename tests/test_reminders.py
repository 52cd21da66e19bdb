"""Reminders before a share expires: to its giver, and to those who opened it and did not
order; each exactly once (sweeps, workers, restarts), and only when WeChat allows the message.

The example config: a share lives 72 hours and reminds 24 hours before, so its reminder is due
at 48 h, exactly when the giver's 48-hour window (since their last message) closes. A giver
who wrote to the account since is reminded in chat; one who did not gets the template message
when one is configured, and otherwise the reminder is marked skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from helpers import BOTH_DATABASES, browser, claim, share_in_chat, share_through

from storage.models import Outbox, Share, utcnow

REMINDER = "⏰"
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def reminders(fake, openid: str | None = None) -> list[str]:
    """The reminder texts WeChat delivered (to `openid`, or to anyone)."""
    return [
        m["text"]["content"]
        for m in fake.messages
        if m["msgtype"] == "text"
        and m["text"]["content"].startswith(REMINDER)
        and openid in (None, m["touser"])
    ]


def at_hour(bot, hours: float) -> None:
    """Move the bot's clock to `hours` after the test started (forward only)."""
    started = getattr(bot, "_started", None) or bot.clock()
    bot._started = started
    bot.clock.offset += started + dt.timedelta(hours=hours) - bot.clock()


def sweep(bot) -> None:
    bot.run(bot.services.sweep_once())
    bot.drain()


def test_the_giver_is_reminded_once_with_what_is_left_when_it_expires_and_the_link(bot):
    at_hour(bot, 0)
    token = share_in_chat(bot, quantity="3")
    claim(bot, browser(bot, "o_friend"), token)
    at_hour(bot, 47)
    bot.wx.text("o_giver", "我送出的")  # the giver writes: WeChat's window is open again
    at_hour(bot, 47.5)
    sweep(bot)
    assert reminders(bot.fake_wechat) == [], "not due before 24 hours are left"

    at_hour(bot, 48.1)
    sweep(bot)
    (text,) = reminders(bot.fake_wechat, "o_giver")
    share = Share.get(Share.token == token)
    expires = share.expires_at.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert "明前龙井礼盒" in text and "还有 2 份" in text
    assert expires.strftime("%H:%M") in text, "when it expires, in China time"
    assert f"{bot.config.server.public_url}/claim/{token}" in text, "the link to send again"

    for hours in (49, 60, 71):
        at_hour(bot, hours)
        sweep(bot)
    assert len(reminders(bot.fake_wechat, "o_giver")) == 1, "once, however many sweeps"
    assert Outbox.select().where(Outbox.key == f"remind:share:{share.id}").count() == 1


def test_a_fully_claimed_revoked_or_short_lived_share_reminds_nobody(bot_factory):
    bot = bot_factory(shares={"expire_hours": 12})
    at_hour(bot, 0)
    share_in_chat(bot, giver="o_short")  # lives 12 h: a 24 h reminder would come at its birth
    at_hour(bot, 11)
    sweep(bot)
    assert not Outbox.select().where(Outbox.key.startswith("remind:")).exists()

    bot = bot_factory()
    at_hour(bot, 0)
    claim(bot, browser(bot, "o_friend"), share_in_chat(bot, giver="o_full"))
    share_in_chat(bot, giver="o_revoker")
    bot.wx.text("o_revoker", "我送出的")
    assert "已撤回" in bot.wx.text("o_revoker", "撤回 1")["Content"]
    at_hour(bot, 50)
    sweep(bot)
    assert not Outbox.select().where(Outbox.key.startswith("remind:")).exists()


def test_remind_hours_zero_turns_reminders_off(bot_factory):
    bot = bot_factory(shares={"remind_hours": 0})
    at_hour(bot, 0)
    share_in_chat(bot)
    at_hour(bot, 47)
    bot.wx.text("o_giver", "我送出的")
    at_hour(bot, 60)
    sweep(bot)
    assert not Outbox.select().where(Outbox.key.startswith("remind:")).exists()
    assert reminders(bot.fake_wechat) == []


def test_who_opened_the_share_and_did_not_order_is_reminded_once_and_who_ordered_is_not(bot):
    at_hour(bot, 0)
    token = share_in_chat(bot, quantity="3")
    at_hour(bot, 30)
    assert "领取" in bot.wx.text("o_chat", f"领取 {token}")["Content"]  # opened it in chat
    bot.wx.text("o_chat", "取消")
    browser_visitor = browser(bot, "o_web")
    assert browser_visitor.get(f"{bot.url}/claim/{token}", timeout=10).status_code == 200
    claim(bot, browser(bot, "o_done"), token)  # opened it and ordered
    bot.wx.text("o_giver", "我送出的")

    at_hour(bot, 48.5)
    sweep(bot)
    (text,) = reminders(bot.fake_wechat, "o_chat")
    assert "还没有领取" in text and f"/claim/{token}" in text
    assert reminders(bot.fake_wechat, "o_done") == [], "who ordered is not reminded"
    web = Outbox.get(Outbox.key == f"remind:visit:{Share.get().id}:o_web")
    assert web.status == "skipped", "o_web never wrote to the account: WeChat would refuse"
    assert "48-hour window" in web.last_error
    assert not Outbox.select().where(Outbox.key.endswith(":o_giver")).exists(), (
        "the giver opening their own share is no visit"
    )

    at_hour(bot, 60)
    sweep(bot)
    assert len(reminders(bot.fake_wechat, "o_chat")) == 1


def test_a_closed_window_marks_the_reminder_skipped_visible_and_never_retried(bot):
    at_hour(bot, 0)
    share_in_chat(bot)  # the giver's last message: now
    at_hour(bot, 48.5)
    sweep(bot)
    row = Outbox.get(Outbox.key.startswith("remind:share:"))
    assert row.status == "skipped" and row.attempts == 1
    assert "48-hour window" in row.last_error and "no template message" in row.last_error
    assert reminders(bot.fake_wechat) == []

    listed = subprocess.run(
        [sys.executable, "-m", "bot", "outbox", "list", "--status", "skipped",
         "--config", bot.tmp_config()],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert f"remind:share:{Share.get().id}" in listed.stdout and "48-hour" in listed.stdout

    at_hour(bot, 70)
    sweep(bot)
    assert Outbox.get_by_id(row.id).attempts == 1, "skipped is final"


def test_wechat_refusing_with_45015_marks_the_reminder_skipped(bot):
    at_hour(bot, 0)
    share_in_chat(bot)
    at_hour(bot, 47)
    bot.wx.text("o_giver", "我送出的")
    bot.fake_wechat.fail_next("/cgi-bin/message/custom/send", 45015)
    at_hour(bot, 48.5)
    sweep(bot)
    row = Outbox.get(Outbox.key.startswith("remind:share:"))
    assert row.status == "skipped" and "45015" in row.last_error and row.attempts == 1
    at_hour(bot, 60)
    sweep(bot)
    assert Outbox.get_by_id(row.id).attempts == 1


def test_with_a_template_configured_a_closed_window_sends_the_template_message(bot_factory):
    bot = bot_factory(wechat={"notice_template_id": "TPL_gift_notice"})
    at_hour(bot, 0)
    token = share_in_chat(bot, quantity="2")
    at_hour(bot, 48.5)
    sweep(bot)
    (sent,) = bot.fake_wechat.templates
    assert sent["touser"] == "o_giver" and sent["template_id"] == "TPL_gift_notice"
    assert sent["url"] == f"{bot.config.server.public_url}/claim/{token}"
    assert sent["data"]["keyword1"]["value"] == "明前龙井礼盒"
    assert sent["data"]["keyword2"]["value"] == "即将过期"
    assert sent["data"]["first"]["value"].startswith(REMINDER)
    assert reminders(bot.fake_wechat) == [], "no customer-service message outside the window"
    assert Outbox.get(Outbox.key.startswith("remind:share:")).status == "sent"


# -- many workers, restarts --------------------------------------------------------------


def due_now(share_id: int) -> None:
    """Age a share so that its reminder is due: 71 of its 72 hours gone."""
    now = utcnow()
    Share.update(
        created_at=now - dt.timedelta(hours=71), expires_at=now + dt.timedelta(hours=1)
    ).where(Share.id == share_id).execute()


def wait_for_reminders(cluster, count: int, seconds: float = 15) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = [m for m in cluster.wechat.messages if m["text"]["content"].startswith(REMINDER)]
        pending = Outbox.select().where(Outbox.status == "pending").exists()
        if len(sent) >= count and not pending:
            break
        time.sleep(0.1)
    return [m for m in cluster.wechat.messages if m["text"]["content"].startswith(REMINDER)]


@BOTH_DATABASES
def test_each_reminder_goes_out_once_across_workers_and_restarts(cluster):
    server = cluster.start("two", workers=2)
    tokens = [share_through(server.wx, f"o_giver{n}", quantity="2") for n in range(3)]
    for token in tokens:
        server.wx.text("o_friend", f"领取 {token}")  # a visitor of each, in the window
        server.wx.text("o_friend", "取消")
    server.kill()
    for token in tokens:
        due_now(Share.get(Share.token == token).id)
    server.start()  # both workers sweep at start-up, racing for the same reminders
    sent = wait_for_reminders(cluster, 6)
    assert sorted(m["touser"] for m in sent) == sorted(
        [f"o_giver{n}" for n in range(3)] + ["o_friend"] * 3
    )

    sentinel = share_through(server.wx, "o_late", quantity="1")
    server.kill()
    due_now(Share.get(Share.token == sentinel).id)
    server.start()  # the earlier ones are not sent again; the new one is, once
    sent = wait_for_reminders(cluster, 7)
    assert len(sent) == 7 and [m["touser"] for m in sent].count("o_late") == 1
    keys = [row.key for row in Outbox.select().where(Outbox.key.startswith("remind:"))]
    assert len(keys) == len(set(keys)) == 7
