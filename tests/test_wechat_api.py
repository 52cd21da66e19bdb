"""The WeChat API client against the local fake of WeChat (a real socket, no mocks)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fakes.wechat_api import SUBSCRIBE_TEMPLATE, FakeWeChat
from tornado.httpclient import AsyncHTTPClient

import storage.db
from bot.config import Menu, MenuButton
from bot.outgoing import wechat_tokens as tokens
from bot.outgoing.wechat_api import WeChatApi, WeChatError
from storage.models import ApiToken
from storage.runner import Runner

RUNNER = Runner(2)  # the database threads of these tests' clients

SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def database(tmp_path):
    database = storage.db.connect("sqlite:///" + str(tmp_path / "t.db"))
    storage.db.migrate()
    yield database
    database.close()


@pytest.fixture
def fake():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture
def api(fake, database):
    return WeChatApi(fake.config(), RUNNER)


def run(coro):
    return asyncio.run(coro)


def paths(fake):
    return [path for path, _, _ in fake.calls]


# -- access_token ---------------------------------------------------------------


def test_token_is_fetched_once_and_shared_by_two_clients(fake, database):
    first, second = WeChatApi(fake.config(), RUNNER), WeChatApi(fake.config(), RUNNER)
    token = run(first.access_token())
    assert run(second.access_token()) == token
    assert fake.token_fetches == 1
    assert ApiToken.get(ApiToken.name == "wechat").value == token


def test_token_is_fetched_with_stable_token_and_no_force(api, fake):
    run(api.access_token())
    path, _, body = fake.calls[0]
    assert path == "/cgi-bin/stable_token"
    assert body == {
        "grant_type": "client_credential",
        "appid": fake.app_id,
        "secret": fake.app_secret,
        "force_refresh": False,
    }


def test_token_expiring_within_five_minutes_is_fetched_again(api, fake, monkeypatch):
    run(api.access_token())
    expires = ApiToken.get().expires_at
    # Four minutes before it expires, in this process's copy and in the row alike.
    monkeypatch.setattr(tokens, "utcnow", lambda: expires - dt.timedelta(minutes=4))
    run(api.access_token())
    assert fake.token_fetches == 2


def test_a_process_keeps_its_copy_of_the_token_and_reads_the_row_once(api, fake, monkeypatch):
    reads = []
    stored = tokens.stored
    monkeypatch.setattr(tokens, "stored", lambda *row: reads.append(row) or stored(*row))
    token = run(api.access_token())
    assert len(reads) == 2  # none yet, before and after waiting for the lock: fetched
    for i in range(5):
        run(api.send_text(f"o_{i}", "hi"))
    assert len(reads) == 2
    assert {query["access_token"] for path, query, _ in fake.calls if path == SEND} == {token}
    fresh = WeChatApi(fake.config(), RUNNER)  # another process: reads the row, fetches nothing
    assert run(fresh.access_token()) == token and len(reads) == 3
    assert fake.token_fetches == 1


def test_a_copy_another_process_made_stale_is_refused_once_then_the_rows_is_used(api, fake):
    old = run(api.access_token())
    other = WeChatApi(fake.config(), RUNNER)
    run(other._renew_token(old))  # WeChat refused it there: stable_token, then force_refresh
    new = ApiToken.get().value
    assert new != old
    run(api.send_text("o_alice", "hi"))  # this process's copy is refused (40001): the row's
    tokens_sent = [query["access_token"] for path, query, _ in fake.calls if path == SEND]
    assert tokens_sent == [old, new]
    assert len(fake.messages) == 1 and ApiToken.get().value == new


def test_stale_token_is_refreshed_and_the_call_retried_once(api, fake):
    old = run(api.access_token())
    fake.expire_token()
    run(api.send_text("o_alice", "hi"))
    assert paths(fake) == ["/cgi-bin/stable_token", SEND, "/cgi-bin/stable_token", SEND]
    assert fake.calls[2][2]["force_refresh"] is False
    assert ApiToken.get().value not in (old, None)
    assert len(fake.messages) == 1


def test_refused_token_that_stable_token_hands_back_is_force_refreshed(api, fake):
    old = run(api.access_token())
    fake.fail_next(SEND, 40001)
    run(api.send_text("o_alice", "hi"))
    forced = [
        body["force_refresh"] for path, _, body in fake.calls if path.endswith("stable_token")
    ]
    assert forced == [False, False, True]
    assert fake.current_token != old
    assert ApiToken.get().value == fake.current_token


def test_token_refused_twice_is_given_up_after_one_retry(api, fake):
    fake.fail_next(SEND, 42001, times=2)
    with pytest.raises(WeChatError) as caught:
        run(api.send_text("o_alice", "hi"))
    assert caught.value.errcode == 42001
    assert paths(fake).count(SEND) == 2


def test_concurrent_calls_in_one_worker_fetch_the_token_once(api, fake):
    async def five_at_once():
        await asyncio.gather(*(api.send_text(f"o_{i}", "hi") for i in range(5)))

    run(five_at_once())
    assert fake.token_fetches == 1
    assert len(fake.messages) == 5


def test_bad_secret_is_a_permanent_error(fake, database):
    api = WeChatApi(fake.config(app_secret="wrong"), RUNNER)
    with pytest.raises(WeChatError) as caught:
        run(api.access_token())
    assert (caught.value.errcode, caught.value.retryable) == (40125, False)


def test_client_survives_one_asyncio_run_after_another(api, fake):
    run(api.send_text("o_alice", "one"))
    run(api.send_text("o_alice", "two"))
    assert [m["text"]["content"] for m in fake.messages] == ["one", "two"]


# -- what the bot sends ---------------------------------------------------------

MENU = Menu(
    button=[
        MenuButton(name="送礼物", key="GIFTS"),
        MenuButton(
            name="我的",
            sub_button=[
                MenuButton(name="我送的礼物", key="MY_GIFTS"),
                MenuButton(name="我的订单", key="MY_ORDERS"),
                MenuButton(name="帮助", type="view", url="https://gift.example.com/help"),
            ],
        ),
    ]
)


def test_menu_push_sends_wechat_shape_with_chinese_unescaped(api, fake):
    run(api.create_menu(MENU))
    assert fake.menus == [
        {
            "button": [
                {"type": "click", "name": "送礼物", "key": "GIFTS"},
                {
                    "name": "我的",
                    "sub_button": [
                        {"type": "click", "name": "我送的礼物", "key": "MY_GIFTS"},
                        {"type": "click", "name": "我的订单", "key": "MY_ORDERS"},
                        {"type": "view", "name": "帮助", "url": "https://gift.example.com/help"},
                    ],
                },
            ]
        }
    ]


def test_fake_refuses_escaped_chinese_like_wechat(api, fake):
    token = run(api.access_token())

    async def post_escaped():
        client = AsyncHTTPClient(force_instance=True)
        body = json.dumps({"button": [{"type": "click", "name": "礼物", "key": "G"}]})
        url = f"{fake.url}/cgi-bin/menu/create?access_token={token}"
        response = await client.fetch(url, method="POST", body=body)
        client.close()
        return json.loads(response.body)

    assert run(post_escaped())["errcode"] == 40033
    assert fake.menus == []


def test_menu_over_wechat_limits_is_refused(api, fake):
    too_long = Menu(button=[MenuButton(name="一个很长的菜单名字", key="GIFTS")])
    with pytest.raises(WeChatError) as caught:
        run(api.create_menu(too_long))
    assert (caught.value.errcode, caught.value.retryable) == (40018, False)


def test_custom_text_message(api, fake):
    run(api.send_text("o_alice", "礼物已送达"))
    assert fake.messages == [
        {"touser": "o_alice", "msgtype": "text", "text": {"content": "礼物已送达"}}
    ]


# -- one-time subscription messages (一次性订阅消息) ----------------------------------


SUBSCRIBE = "/cgi-bin/message/template/subscribe"


def refused_with(api, **changes) -> int:
    """The errcode WeChat (the fake) answers a one-time subscription message changed so."""
    body = {"touser": "o_alice", "template_id": SUBSCRIBE_TEMPLATE, "scene": "12",
            "title": "中奖", "data": {"content": {"value": "恭喜你抽中了"}}} | changes  # fmt: skip
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(WeChatError) as caught:
        run(api.call("POST", SUBSCRIBE, body))
    return caught.value.errcode


def test_a_one_time_subscription_message_goes_once_per_confirmation(api, fake):
    fake.grant("o_alice", 12)
    run(
        api.send_subscription(
            "o_alice", SUBSCRIBE_TEMPLATE, 12, "中奖", "恭喜你抽中了", "https://g.example/c/1"
        )
    )
    (sent,) = fake.subscribed
    assert (sent["scene"], sent["title"], sent["data"]) == (
        "12",
        "中奖",
        {"content": {"value": "恭喜你抽中了"}},
    )  # the scene goes as a string, as the docs' example writes it
    assert sent["url"] == "https://g.example/c/1" and sent["shown_in"] == "服务通知"
    with pytest.raises(WeChatError) as used:  # one confirmation, one message
        run(api.send_subscription("o_alice", SUBSCRIBE_TEMPLATE, 12, "中奖", "再来一条"))
    assert (used.value.errcode, used.value.retryable) == (43101, False)


def test_the_fake_refuses_subscription_messages_as_wechat_does(api, fake):
    fake.grant("o_alice", 12)
    assert refused_with(api, touser="o_nobody") == 43101, "granted nothing"
    assert refused_with(api, scene="13") == 43101, "granted at another scene"
    assert refused_with(api, template_id="TPL_gift_notice") == 40037, "not the one-time template"
    assert refused_with(api, touser=None) == 40003
    assert refused_with(api, scene=None) == 47003
    assert refused_with(api, scene="10001") == 47003, "scenes are 0-10000"
    assert refused_with(api, title=None) == 47003
    assert refused_with(api, title="十六个字的标题十六个字的标题十六") == 47003, (
        "15 characters at most"
    )
    assert refused_with(api, data={"content": {"value": ""}}) == 47003
    assert refused_with(api, data={"content": {"value": "字" * 201}}) == 47003, "200 at most"
    assert refused_with(api, data={}) == 47003
    assert refused_with(api, url="javascript:alert(1)") == 40054
    assert fake.subscribed == [] and fake.grants[("o_alice", SUBSCRIBE_TEMPLATE, 12)] == 1


def test_wechats_confirm_page_sends_the_visitor_back_with_what_the_docs_name(fake):
    page = f"{fake.url}/mp/subscribemsg"
    query = {"action": "get_confirm", "appid": fake.app_id, "scene": "12",
             "template_id": SUBSCRIBE_TEMPLATE, "redirect_url": "https://g.example/subscribed",
             "reserved": "abc123"}  # fmt: skip
    fake.set_user("o_alice")
    confirmed = requests.get(page, params=query, allow_redirects=False, timeout=10)
    back = urlsplit(confirmed.headers["Location"])
    assert (back.netloc, back.path) == ("g.example", "/subscribed")
    assert parse_qs(back.query) == {"openid": ["o_alice"], "template_id": [SUBSCRIBE_TEMPLATE],
                                    "scene": ["12"], "reserved": ["abc123"], "action": ["confirm"]}  # fmt: skip
    fake.grant("o_alice", 12)  # confirmations under one scene do not add up
    assert fake.grants[("o_alice", SUBSCRIBE_TEMPLATE, 12)] == 1
    fake.set_user("o_bob", consents=False)
    cancelled = parse_qs(urlsplit(requests.get(page, params=query, allow_redirects=False,
                                               timeout=10).headers["Location"]).query)  # fmt: skip
    assert cancelled["action"] == ["cancel"] and "openid" not in cancelled
    for wrong in ({"scene": "10001"}, {"appid": "wx_other"}, {"template_id": "x"},
                  {"reserved": "not alnum!"}, {"reserved": "a" * 129}, {"action": "get"}):  # fmt: skip
        assert requests.get(page, params=query | wrong, timeout=10).status_code == 400, wrong


def test_qr_code_is_created_with_its_scene_and_lifetime(api, fake):
    qr = run(api.create_qr("share_abc123", 3600))
    assert fake.qrcodes == [{"ticket": qr.ticket, "scene": "share_abc123", "expire_seconds": 3600}]
    assert qr.expire_seconds == 3600
    assert qr.url.startswith("http")


def test_qr_scene_over_64_characters_is_refused_before_calling_wechat(api, fake):
    with pytest.raises(ValueError):
        run(api.create_qr("x" * 65, 60))
    assert fake.calls == []


# -- web OAuth --------------------------------------------------------------------


def test_oauth_url_has_wechat_param_order_and_fragment(api, fake):
    url = api.oauth_authorize_url("https://gift.example.com/claim/abc?x=1", state="abc123")
    assert url == (
        f"{fake.url}/connect/oauth2/authorize?appid={fake.app_id}"
        "&redirect_uri=https%3A%2F%2Fgift.example.com%2Fclaim%2Fabc%3Fx%3D1"
        "&response_type=code&scope=snsapi_base&state=abc123#wechat_redirect"
    )


def test_oauth_state_must_be_letters_and_digits(api):
    with pytest.raises(ValueError):
        api.oauth_authorize_url("https://gift.example.com/", state="a b")


def test_oauth_code_is_exchanged_once_for_the_openid(api, fake):
    fake.set_user("o_carol")
    url = api.oauth_authorize_url("https://gift.example.com/claim/abc", state="s1")

    async def consent():
        client = AsyncHTTPClient(force_instance=True)
        response = await client.fetch(url.split("#")[0], follow_redirects=False, raise_error=False)
        client.close()
        return response

    response = run(consent())
    assert response.code == 302
    back = urlsplit(response.headers["Location"])
    assert back.netloc == "gift.example.com" and back.path == "/claim/abc"
    query = parse_qs(back.query)
    assert query["state"] == ["s1"]
    code = query["code"][0]

    assert run(api.oauth_openid(code)) == "o_carol"
    with pytest.raises(WeChatError) as reused:
        run(api.oauth_openid(code))
    assert (reused.value.errcode, reused.value.retryable) == (40163, False)
    with pytest.raises(WeChatError) as unknown:
        run(api.oauth_openid("not-a-code"))
    assert unknown.value.errcode == 40029


# -- errors: try again later, or give up -------------------------------------------


@pytest.mark.parametrize(
    "errcode, retryable",
    [(-1, True), (45009, True), (45015, False), (45047, False), (43004, False), (40003, False)],
)
def test_wechat_errors_say_whether_to_try_again(api, fake, errcode, retryable):
    fake.fail_next(SEND, errcode)
    with pytest.raises(WeChatError) as caught:
        run(api.send_text("o_alice", "hi"))
    assert (caught.value.errcode, caught.value.retryable) == (errcode, retryable)


def test_server_error_is_retryable(api, fake):
    fake.fail_next(SEND, status=502)
    with pytest.raises(WeChatError) as caught:
        run(api.send_text("o_alice", "hi"))
    assert caught.value.errcode is None and caught.value.retryable


def test_closed_port_is_a_retryable_network_error(database, fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    api = WeChatApi(fake.config(api_base=closed, timeout_seconds=2), RUNNER)
    with pytest.raises(WeChatError) as caught:
        run(api.send_text("o_alice", "hi"))
    assert caught.value.errcode is None and caught.value.retryable
