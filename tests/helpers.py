"""Helpers several test modules share; fixtures (`bot`, `bot_factory`, `db_url`, …) are in
conftest.py. Import them by name (conftest.py puts tests/ on sys.path)::

    from helpers import BOTH_DATABASES, browser, claim, fill, monday_morning, say, share_in_chat

    @BOTH_DATABASES                          # run on SQLite and on PostgreSQL
    def test_x(bot):
        monday = monday_morning(bot)         # the bot's clock: the coming Monday, 10:00 Shanghai
        token = share_in_chat(bot)           # the giver's share dialogue; returns the claim token
        card = confirm_card(bot.wx, "o_giver")   # after a dialogue of your own: 确认 (in a paid
                                             # run, and the payment); the card to forward
        fill(bot, "o_friend", token)         # the recipient's chat form, up to the summary
        say(bot, "o_friend", "确认")          # send texts; the last reply's content
        conversation("o_friend").flow        # the chat's stored state
        claim(bot, browser(bot, "o_other"), token, delivery=tuesday_afternoon(monday))
        chat_to(bot, "o_friend"); sms_of(bot, "order_shipped")   # what reached them: chat, SMS
    browser(bot, "o_friend").headers["User-Agent"]   # WECHAT_UA; DESKTOP_UA is any other browser

    @free_mode_only("why")                   # skipped in a GIFTBOT_TEST_PAYMENTS=wechatpay run
    @needs_ffmpeg                            # a voice greeting is converted: skipped without it

    path = write_config(tmp_path, raw)       # a config dict as a TOML file
    port = free_port()                       # a loopback port nobody listens on right now
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import tomli_w

from bot.forms.delivery import delivery_slots
from storage.models import Conversation, Outbox

# GIFTBOT_TEST_PAYMENTS=wechatpay: every bot in [payments] mode "wechatpay" (conftest.py).
PAYMENTS = os.environ.get("GIFTBOT_TEST_PAYMENTS") or "free"
if PAYMENTS not in ("free", "wechatpay"):
    raise SystemExit(f"GIFTBOT_TEST_PAYMENTS={PAYMENTS!r}: free or wechatpay")
PAID = PAYMENTS == "wechatpay"


needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg not installed (voice greetings): apt-get install ffmpeg",
)


def free_mode_only(reason: str):
    """Run this test in free mode only (skipped in a GIFTBOT_TEST_PAYMENTS=wechatpay run)."""
    return pytest.mark.free_mode_only(reason)


SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = "一二三四五六日"
BOTH_DATABASES = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)

# -- the chat: the pinned clock and the recipient's form ---------------------------

# What a recipient types, step by step, on the happy path.
ANSWERS = {
    "name": "张小红",
    "phone": "13800138000",
    "address": "广东省深圳市南山区科技园南区 8 栋 1201",
    "delivery": "1",
}


def next_monday_morning(after: dt.datetime) -> dt.datetime:
    """The first Monday, 10:00 in Shanghai, after `after` (an aware time)."""
    local = after.astimezone(SHANGHAI)
    target = local.replace(hour=10, minute=0, second=0, microsecond=0)
    target += dt.timedelta(days=-local.weekday() % 7)
    return target if target > local else target + dt.timedelta(days=7)


def monday_morning(bot) -> dt.date:
    """Move the bot's clock to the coming Monday, 10:00 in Shanghai; returns that date."""
    real = bot.clock()
    target = next_monday_morning(real.replace(tzinfo=dt.UTC))
    bot.clock.offset += target.astimezone(dt.UTC).replace(tzinfo=None) - real
    return target.date()


def label(day: dt.date, window: str) -> str:
    """A slot as the recipient reads it: 12月1日 周二 14:00-18:00."""
    return f"{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]} {window}"


def say(bot, openid: str, *texts: str) -> str:
    """Send each text in turn; the content of the last reply (a card's URL for a card)."""
    for text in texts:
        reply = bot.wx.text(openid, text)
    return reply["Content"] if reply["MsgType"] == "text" else reply["article"]["Url"]


def conversation(openid: str) -> Conversation:
    """The user's conversation row; a user who only browsed has none, which reads as empty."""
    row = Conversation.get_or_none(Conversation.openid == openid)
    return row or Conversation(openid=openid, answers={}, context={}, hints={}, version=0)


def fill(bot, openid: str, token: str, upto: str | None = None, answers=ANSWERS) -> str:
    """Start the form with 领取 and answer every step before `upto` (None: to the summary)."""
    reply = say(bot, openid, f"领取 {token}")
    for field, text in answers.items():
        if field == upto:
            break
        reply = say(bot, openid, text)
    return reply


def tuesday_afternoon(monday: dt.date) -> str:
    return f"{(monday + dt.timedelta(days=1)).isoformat()} 14:00-18:00"


ENTRIES = {
    "text": lambda bot, openid, token: bot.wx.text(openid, f"领取 {token}"),
    "subscribe": lambda bot, openid, token: bot.wx.subscribe(openid, scene=token),
    "scan": lambda bot, openid, token: bot.wx.scan(openid, token),
}

# -- sharing in chat, claiming on the web ------------------------------------------

FORM = {
    "name": "张小红",
    "phone": "+86 138-0013-8000",
    "address": "广东省深圳市南山区科技园南区 8 栋 1201",
}


def share_in_chat(bot, giver="o_giver", number="1", quantity="1", blessing="生日快乐！"):
    """The giver's whole share dialogue; returns the claim token from the card."""
    url = share_card(bot.wx, giver, quantity, blessing, number)
    token = url.rsplit("/", 1)[1]
    assert url == f"{bot.config.server.public_url}/claim/{token}"
    return token


def share_through(wx, giver="o_giver", quantity="1", blessing="跳过", number="1") -> str:
    """The same against any server (a `cluster` server's `wx`); returns the claim token."""
    return share_card(wx, giver, quantity, blessing, number).rsplit("/", 1)[1]


def share_card(wx, giver: str, quantity: str, blessing: str, number: str) -> str:
    """The share dialogue: gift `number`, 送, how many, the blessing, 确认; the card's URL."""
    for text in (number, "送", quantity, blessing):
        wx.text(giver, text)
    return confirm_card(wx, giver)["Url"]


def confirm_card(wx, giver: str) -> dict:
    """确认 at the end of a share dialogue; the card the giver gets to forward (its Title,
    Description, Url and PicUrl). In a paid run (GIFTBOT_TEST_PAYMENTS=wechatpay) 确认 answers
    with a pay link, and the giver pays first: tests/paying.py, Payer."""
    return card_of(wx, giver, wx.text(giver, "确认"))


def card_of(wx, giver: str, reply: dict) -> dict:
    """The card that 确认's `reply` gives (said any way: typed, spoken), paying first in a
    paid run."""
    payer = getattr(wx, "payer", None)
    if payer is None:
        assert reply["MsgType"] == "news", f"确认 gave no card: {reply}"
        return reply["article"]
    return payer.card(giver, reply)


def claim_messages():
    """The outbox's rows other than a paid share's card (in free mode the card is 确认's reply,
    never a message; in a paid run it is sent once paid): what claims and orders queued."""
    return Outbox.select().where(~Outbox.key.startswith("notice:paid:"))


def chat_to(bot, openid: str) -> list[str]:
    """The customer-service messages WeChat took for `openid`, in order."""
    return [m["text"]["content"] for m in bot.fake_wechat.messages if m["touser"] == openid]


def sms_of(bot, template: str) -> list[dict]:
    """The SMS the webhook received with this template, in order."""
    return [sms for sms in bot.sms.received if sms["template"] == template]


# WeChat's browser says so in its user agent; a claim link opened without it offers a verified
# mobile instead of WeChat's login (handlers/web/mobile.py).
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323c) NetType/WIFI"
)
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def in_wechat(session: requests.Session) -> requests.Session:
    session.headers["User-Agent"] = WECHAT_UA
    return session


def browser(bot, openid: str) -> requests.Session:
    """A phone in WeChat: the fake OAuth server knows who holds it."""
    bot.fake_wechat.set_user(openid)
    return in_wechat(requests.Session())


def xsrf(page: requests.Response) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def first_slot(bot) -> str:
    return delivery_slots(bot.config.delivery, bot.clock().replace(tzinfo=dt.UTC))[0].key


def claim(bot, session, token, **fields):
    form_page = session.get(f"{bot.url}/claim/{token}/form", timeout=10)
    data = FORM | {"delivery": first_slot(bot)} | fields | {"_xsrf": xsrf(form_page)}
    return session.post(f"{bot.url}/claim/{token}/form", data=data, timeout=10)


# -- files and ports ---------------------------------------------------------------


def write_config(folder: Path, raw: dict, name: str = "config.toml") -> Path:
    text = tomli_w.dumps(raw)
    assert tomllib.loads(text) == raw, "the test's TOML writer lost something"
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def outward_ip() -> str | None:
    """This machine's address on its network, if it has one (the kernel picks the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
        except OSError:
            return None
        ip = s.getsockname()[0]
    return None if ip.startswith("127.") else ip


def migrations_down_through(runner, name: str) -> list[str]:
    """Roll migrations back, the latest first, until `name` is undone; their names in order.
    A migration's down-and-up test stays true whatever migrations come after it."""
    undone: list[str] = []
    while name not in undone:
        step = runner.down()
        assert step, f"{name} was never applied"
        undone += step
    return undone
