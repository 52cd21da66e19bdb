"""The /dev sandbox over HTTP: it signs (and in safe mode encrypts) like WeChat, goes through
the real callback, shows what was sent, and exists only when configured on a loopback URL."""

from __future__ import annotations

import pytest
import requests
from conftest import AES_KEY, make_config
from helpers import free_mode_only, outward_ip
from sandboxing import dev_send, dev_session
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bot.config import ConfigError
from storage.models import Order, Share


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plaintext", "safe-mode"])
def test_the_sandbox_chats_through_the_real_callback(bot_factory, aes_key):
    bot = bot_factory(server={"sandbox": True}, wechat={"encoding_aes_key": aes_key})
    s, headers = dev_session(bot)
    welcome = dev_send(bot, s, headers, openid="dev-giver", kind="subscribe")
    assert welcome["type"] == "text" and "礼物" in welcome["content"]
    assert (
        "明前龙井礼盒"
        in dev_send(bot, s, headers, openid="dev-giver", kind="click", key="GIFTS")["content"]
    )
    card = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="1")
    assert card["type"] == "card" and card["url"].endswith("/gifts/tea-longjing")


@free_mode_only("the sandbox's paid story is test_pay_sandbox_and_config.py's")
def test_the_sandbox_shows_the_sms_and_the_givers_notice(bot_factory):
    bot = bot_factory(server={"sandbox": True}, sms={"backend": "console"})
    s, headers = dev_session(bot)
    for text in ("1", "送", "1", "跳过"):
        dev_send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    token = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="确认")["url"].rsplit(
        "/", 1
    )[1]
    dev_send(bot, s, headers, openid="dev-friend-1", kind="scan", key=token)
    for text in ("张小红", "13800138000", "广东省深圳市南山区科技园南区8栋1201", "1"):
        dev_send(bot, s, headers, openid="dev-friend-1", kind="text", text=text)
    assert (
        "领取成功"
        in dev_send(bot, s, headers, openid="dev-friend-1", kind="text", text="确认")["content"]
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
@free_mode_only("the sandbox's paid story is test_pay_sandbox_and_config.py's")
def test_text_typed_in_the_sandbox_reaches_the_bot_exactly_as_typed(bot_factory, aes_key):
    bot = bot_factory(server={"sandbox": True}, wechat={"encoding_aes_key": aes_key})
    s, headers = dev_session(bot)
    typed = "A&B <3 ]]> 祝你&我"
    for text in ("1", "送", "1"):
        dev_send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    summary = dev_send(bot, s, headers, openid="dev-giver", kind="text", text=typed)
    assert typed in summary["content"] and "dropped" not in summary
    card = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="确认")
    assert card["type"] == "card" and "dropped" not in card
    assert Share.get().blessing == typed


def test_a_reply_wechat_would_drop_is_shown_in_red_with_the_reason(bot_factory, monkeypatch):
    """Were the old bug back (the reply addressed To the account, From the user), the
    sandbox would say so instead of showing the reply as if it had arrived."""
    from handlers import wire

    bot = bot_factory(server={"sandbox": True})
    s, headers = dev_session(bot)
    backwards = wire.reply_xml

    def addressed_backwards(reply, msg, now=None):
        swapped = type(msg)(**{**msg.__dict__, "openid": msg.account, "account": msg.openid})
        return backwards(reply, swapped, now)

    monkeypatch.setattr(wire, "reply_xml", addressed_backwards)
    shown = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="礼品")
    assert any("ToUserName" in problem for problem in shown["dropped"]), shown
    page = s.get(f"{bot.url}/static/dev.js", timeout=10).content.decode()
    assert "微信会丢弃这条回复" in page, "the page draws the reasons in red"


def test_the_sandbox_refuses_to_listen_beyond_this_machine(tmp_path):
    with pytest.raises(ConfigError) as refused:
        make_config(
            f"sqlite:///{tmp_path}/x.db",
            "http://127.0.0.1:8080",
            server={"sandbox": True, "host": "0.0.0.0"},
        )
    assert refused.value.key == "server.host"


@pytest.mark.skipif(outward_ip() is None, reason="this machine has no non-loopback address")
def test_dev_pages_answer_only_a_loopback_peer_whatever_x_real_ip_says(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    ip = outward_ip()

    async def listen_outward() -> int:
        sockets = bind_sockets(0, ip)
        HTTPServer(bot.app, xheaders=True).add_sockets(sockets)
        return sockets[0].getsockname()[1]

    port = bot.run(listen_outward())
    pages = ("/dev", "/dev/inbox?after=0", "/dev/as?openid=o_anyone&next=/", "/dev/login",
             "/dev/subscribemsg?action=get_confirm")  # fmt: skip
    for path in pages:
        r = requests.get(
            f"http://{ip}:{port}{path}",
            headers={"Host": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
            timeout=10,
            allow_redirects=False,
        )
        assert r.status_code == 403, path
        assert "gb_openid" not in r.cookies
    assert requests.get(f"{bot.url}/dev", timeout=10).status_code == 200


def test_dev_pages_refuse_a_foreign_host_name(bot_factory):
    """DNS rebinding: another site's name pointed at 127.0.0.1 gets nothing from the sandbox."""
    bot = bot_factory(server={"sandbox": True})
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        r = requests.get(f"{bot.url}/dev/inbox?after=0", headers={"Host": host}, timeout=10)
        assert r.status_code == 403, host
    for host in ("127.0.0.1", "localhost", f"localhost:{bot.port}"):
        assert requests.get(f"{bot.url}/dev", headers={"Host": host}, timeout=10).ok, host


@pytest.mark.parametrize(
    "next_url",
    ["/%09/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/x",
     "/%0a/evil.example", "javascript:alert(1)", "/ /evil.example"],
)  # fmt: skip
def test_dev_as_never_redirects_off_site(bot_factory, next_url):
    bot = bot_factory(server={"sandbox": True})
    r = requests.get(
        f"{bot.url}/dev/as?openid=dev-friend-1&next={next_url}", timeout=10, allow_redirects=False
    )
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_the_sandbox_page_folds_the_events_and_links_the_sms_for_a_phone(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    page = requests.get(f"{bot.url}/dev", timeout=10).text
    assert '<details class="events" id="events">' in page, "folded until the script sees room"
    assert 'href="#sms-panel"' in page and 'id="sms-panel"' in page
