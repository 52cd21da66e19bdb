"""The /dev sandbox over HTTP: it signs (and in safe mode encrypts) like WeChat, goes through
the real callback, shows what was sent, and exists only when configured on a loopback URL."""

from __future__ import annotations

import pytest
import requests
from conftest import AES_KEY, make_config

from bot.config import ConfigError
from storage.models import Order, Share


def dev_session(bot) -> tuple[requests.Session, dict]:
    s = requests.Session()
    s.get(f"{bot.url}/dev", timeout=10)
    return s, {"X-XSRFToken": s.cookies["_xsrf"]}


def send(bot, session, headers, **message) -> dict:
    r = session.post(f"{bot.url}/dev/send", json=message, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["reply"]


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plaintext", "safe-mode"])
def test_the_sandbox_chats_through_the_real_callback(bot_factory, aes_key):
    bot = bot_factory(server={"sandbox": True}, wechat={"encoding_aes_key": aes_key})
    s, headers = dev_session(bot)
    welcome = send(bot, s, headers, openid="dev-giver", kind="subscribe")
    assert welcome["type"] == "text" and "礼物" in welcome["content"]
    assert (
        "明前龙井礼盒"
        in send(bot, s, headers, openid="dev-giver", kind="click", key="GIFTS")["content"]
    )
    card = send(bot, s, headers, openid="dev-giver", kind="text", text="1")
    assert card["type"] == "card" and card["url"].endswith("/gifts/tea-longjing")


def test_the_sandbox_shows_the_sms_and_the_givers_notice(bot_factory):
    bot = bot_factory(server={"sandbox": True}, sms={"backend": "console"})
    s, headers = dev_session(bot)
    for text in ("1", "送", "1", "跳过"):
        send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    token = send(bot, s, headers, openid="dev-giver", kind="text", text="确认")["url"].rsplit(
        "/", 1
    )[1]
    send(bot, s, headers, openid="dev-friend-1", kind="scan", key=token)
    for text in ("张小红", "13800138000", "广东省深圳市南山区科技园南区8栋1201", "1"):
        send(bot, s, headers, openid="dev-friend-1", kind="text", text=text)
    assert (
        "领取成功"
        in send(bot, s, headers, openid="dev-friend-1", kind="text", text="确认")["content"]
    )
    bot.drain()
    items = s.get(f"{bot.url}/dev/inbox?after=0", timeout=10).json()["items"]
    (sms,) = [i for i in items if i["channel"] == "sms"]
    (notice,) = [i for i in items if i["channel"] == "wechat"]
    assert Order.get().order_no in sms["text"] and sms["to"] == "+8613800138000"
    assert notice["to"] == "dev-giver" and "明前龙井礼盒" in notice["text"]
    assert bot.fake_wechat.messages == [], "a laptop's sandbox sends nothing to WeChat"


def test_dev_as_opens_the_bots_pages_as_that_user_and_only_local_paths(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    r = requests.get(
        f"{bot.url}/dev/as?openid=dev-friend-1&next=https://evil.example/x",
        timeout=10, allow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "gb_openid" in r.cookies


def test_sandbox_posts_need_the_xsrf_token(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    r = requests.post(f"{bot.url}/dev/send", json={"openid": "x", "kind": "text"}, timeout=10)
    assert r.status_code == 403


def test_a_bad_sandbox_message_is_a_400(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    s, headers = dev_session(bot)
    for body in (
        {"openid": "x", "kind": "voice"},
        {"kind": "text"},
        {"openid": "", "kind": "text"},
    ):
        assert (
            s.post(f"{bot.url}/dev/send", json=body, headers=headers, timeout=10).status_code == 400
        )


def test_without_sandbox_there_is_no_dev_page(bot):
    assert requests.get(f"{bot.url}/dev", timeout=10).status_code == 404
    assert requests.get(f"{bot.url}/dev/as?openid=x", timeout=10).status_code == 404


def test_the_sandbox_refuses_a_public_address(tmp_path):
    with pytest.raises(ConfigError) as refused:
        make_config(
            f"sqlite:///{tmp_path}/x.db", "https://gifts.example.com", server={"sandbox": True}
        )
    assert refused.value.key == "server.sandbox"


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plaintext", "safe-mode"])
def test_text_typed_in_the_sandbox_reaches_the_bot_exactly_as_typed(bot_factory, aes_key):
    bot = bot_factory(server={"sandbox": True}, wechat={"encoding_aes_key": aes_key})
    s, headers = dev_session(bot)
    typed = "A&B <3 ]]> 祝你&我"
    for text in ("1", "送", "1"):
        send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    summary = send(bot, s, headers, openid="dev-giver", kind="text", text=typed)
    assert typed in summary["content"] and "dropped" not in summary
    card = send(bot, s, headers, openid="dev-giver", kind="text", text="确认")
    assert card["type"] == "card" and "dropped" not in card
    assert Share.get().blessing == typed
