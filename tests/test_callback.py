"""The /wechat callback: the URL check, signatures before anything runs, safe mode, retries."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import email.utils
import http.client
import json
import logging
import re
import socket
import time
import urllib.parse
import urllib.request

import pytest
import requests
from helpers import confirm_card
from wechat_sim import HttpError, Push, WeChatSim, seen, sha1_signature

from storage.models import InboundMessage, Share, User

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_url_check_echoes_echostr_when_signed(bot):
    query = bot.wx.signed_query() | {"echostr": "4815162342"}
    assert get(f"{bot.url}/wechat?{urllib.parse.urlencode(query)}") == (200, "4815162342")


def test_url_check_with_wrong_signature_is_403(bot):
    query = bot.wx.signed_query() | {"echostr": "4815162342", "signature": "0" * 40}
    status, body = get(f"{bot.url}/wechat?{urllib.parse.urlencode(query)}")
    assert status == 403 and "4815162342" not in body


def test_forged_message_is_refused_and_changes_nothing(bot):
    forger = WeChatSim(bot.url, token="not-the-token", app_id=bot.config.wechat.app_id)
    status, _ = forger.post_raw(forger.text_xml("o_forger", "礼品"), forger.signed_query())
    assert status == 403
    status, _ = bot.wx.post_raw(bot.wx.text_xml("o_forger", "礼品"), {})  # no signature at all
    assert status == 403
    assert User.select().count() == 0
    assert InboundMessage.select().count() == 0


def test_forged_share_confirmation_creates_no_share(bot):
    bot.wx.text("o_alice", "1")
    bot.wx.text("o_alice", "送")
    bot.wx.text("o_alice", "1")
    bot.wx.text("o_alice", "跳过")
    forged = bot.wx.signed_query()
    forged["signature"] = sha1_signature("guess", forged["timestamp"], forged["nonce"])
    status, _ = bot.wx.post_raw(bot.wx.text_xml("o_alice", "确认"), forged)
    assert status == 403
    assert Share.select().count() == 0


def test_old_signed_request_is_a_replay_and_refused(bot):
    old = str(int(time.time()) - 3600)
    status, _ = bot.wx.post_raw(bot.wx.text_xml("o_a", "礼品"), bot.wx.signed_query(timestamp=old))
    assert status == 403
    assert User.select().count() == 0


@pytest.mark.parametrize(
    "body",
    [
        "this is not xml",
        "<xml><FromUserName>o_a</FromUserName>",  # cut short
        "<xml><MsgType>text</MsgType></xml>",  # no sender
        "<xml><FromUserName>o_a</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><FromUserName>&a;</FromUserName></xml>',
        "<other>not the xml root</other>",
    ],
    ids=["not-xml", "truncated", "no-sender", "bad-createtime", "doctype-entities", "wrong-root"],
)
def test_malformed_message_is_400_and_changes_nothing(bot, body):
    status, _ = bot.wx.post_raw(body, bot.wx.signed_query())
    assert status == 400
    assert User.select().count() == 0


# A small entity made 1,000,000 characters by two levels of ten references each.
EXPANDING = (
    '<!DOCTYPE xml [<!ENTITY a "' + "礼" * 10_000 + '">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)


@pytest.mark.parametrize(
    ("dtd", "content", "encoding"),
    [
        ('<!DOCTYPE xml [<!ENTITY w "礼品">]>', "&w;", "utf-16"),
        ('<!DOCTYPE xml [<!ENTITY w "礼品">]>', "&w;", "utf-16-le"),
        (EXPANDING, "&c;", "utf-16"),
        ('<!DOCTYPE xml [<!ENTITY w "礼品">]>', "&w;", "utf-8"),
    ],
    ids=["utf-16-entity", "utf-16-le-without-mark", "utf-16-1mb-expansion", "utf-8-entity"],
)
def test_a_signed_push_with_a_dtd_is_400_in_any_encoding(bot, dtd, content, encoding):
    """Review 2, F4: in UTF-16 the DOCTYPE guard (a byte search) saw nothing, the entity was
    expanded and the push answered 200 (a 1 MB expansion too)."""
    xml = bot.wx.text_xml("o_a", "X").replace("<![CDATA[X]]>", content)
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    body = (declaration + dtd + xml).encode(encoding)
    status, _ = bot.wx.post_raw(body, bot.wx.signed_query())
    assert status == 400
    assert User.select().count() == 0 and InboundMessage.select().count() == 0


def test_a_signed_push_that_is_not_utf8_is_400(bot):
    xml = bot.wx.text_xml("o_a", "礼品")
    for body in (
        xml.encode("utf-16"),
        xml.encode("utf-32"),
        xml.encode("gbk"),
        ('<?xml version="1.0" encoding="GB2312"?>' + xml).encode("gb2312"),
    ):
        assert bot.wx.post_raw(body, bot.wx.signed_query())[0] == 400, body[:40]
    assert User.select().count() == 0
    assert bot.wx.post_raw(xml.encode("utf-8"), bot.wx.signed_query())[0] == 200


def test_wechat_retry_of_a_message_gets_the_same_reply_and_acts_once(bot):
    for text in ("1", "送", "1", "跳过"):
        bot.wx.text("o_alice", text)
    confirm = bot.wx.text_xml("o_alice", "确认", msg_id=777000111)
    first = bot.wx.push(confirm)
    again = bot.wx.push(confirm)
    assert seen(again) == seen(first) and Share.select().count() == 1
    assert Share.get().token in str(seen(first))  # its card, or in wechatpay mode its pay link


def test_overlapping_retries_act_once(bot):
    for text in ("2", "送", "1", "跳过"):
        bot.wx.text("o_alice", text)
    confirm = bot.wx.text_xml("o_alice", "确认", msg_id=777000222)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: bot.wx.push(confirm), range(4)))
    assert all(seen(r) == seen(replies[0]) for r in replies)
    assert Share.select().count() == 1


def test_event_retry_is_deduplicated_by_sender_and_create_time(bot):
    xml = bot.wx.event_xml("o_alice", "CLICK", "GIFTS", created=1_790_000_000)
    assert seen(bot.wx.push(xml)) == seen(bot.wx.push(xml))
    assert InboundMessage.select().count() == 1


def test_a_second_tap_on_a_menu_button_a_second_later_is_answered_too(bot):
    """Events carry no MsgId: their CreateTime tells a new tap from WeChat's retry."""
    first = bot.wx.event_xml("o_alice", "CLICK", "MY_GIFTS", created=1_790_000_000)
    again = bot.wx.event_xml("o_alice", "CLICK", "MY_GIFTS", created=1_790_000_001)
    assert "还没有送出" in seen(bot.wx.push(first))["Content"]
    assert "还没有送出" in seen(bot.wx.push(again))["Content"]
    assert InboundMessage.select().count() == 2


def test_safe_mode_round_trip_is_encrypted_and_signed(safe_bot):
    reply = safe_bot.wx.text("o_alice", "礼品")  # the simulator checks MsgSignature and AppID
    assert "明前龙井礼盒" in reply["Content"]
    status, body = safe_bot.wx.post_raw(
        safe_bot.wx.text_xml("o_alice", "礼品"), safe_bot.wx.signed_query()
    )
    assert status == 400, "a plaintext message in safe mode is refused"


def test_safe_mode_with_wrong_msg_signature_is_403(safe_bot):
    wx = safe_bot.wx
    encrypted = wx.encrypt(wx.text_xml("o_alice", "礼品"))
    query = wx.signed_query() | {"encrypt_type": "aes", "msg_signature": "f" * 40}
    status, _ = wx.post_raw(f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>", query)
    assert status == 403
    assert User.select().count() == 0


def test_safe_mode_message_for_another_app_is_400(safe_bot):
    other = WeChatSim(
        safe_bot.url,
        safe_bot.wx.token,
        "wx_someone_else",
        aes_key=safe_bot.config.wechat.encoding_aes_key,
    )
    with pytest.raises(HttpError) as refused:
        other.text("o_alice", "礼品")
    assert getattr(refused.value, "status", None) == 400
    assert User.select().count() == 0


def test_safe_mode_garbage_ciphertext_is_400(safe_bot):
    wx = safe_bot.wx
    garbage = "bm90IGEgcmVhbCBjaXBoZXJ0ZXh0"
    query = wx.signed_query()
    query |= {
        "encrypt_type": "aes",
        "msg_signature": sha1_signature(wx.token, query["timestamp"], query["nonce"], garbage),
    }
    status, _ = wx.post_raw(f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>", query)
    assert status == 400


def test_text_that_would_close_cdata_is_echoed_intact_and_cannot_inject_xml(bot):
    blessing = "]]> 生日快乐 ]]]]> 身体健康 ]]>"
    for text in ("1", "送", "1", blessing):
        reply = bot.wx.text("o_alice", text)
    assert reply["MsgType"] == "text" and blessing in reply["Content"]
    assert blessing in confirm_card(bot.wx, "o_alice")["Description"]


def test_a_failure_inside_the_bot_gets_an_apology_and_keeps_nothing(bot):
    from storage.models import db

    db.execute_sql('ALTER TABLE "conversation" RENAME TO "conversation_gone"')
    try:
        reply = bot.wx.text("o_alice", "礼品")
    finally:
        db.execute_sql('ALTER TABLE "conversation_gone" RENAME TO "conversation"')
    assert "出了点问题" in reply["Content"]
    assert User.select().count() == 0 and InboundMessage.select().count() == 0
    assert "礼物清单" in bot.wx.text("o_alice", "礼品")["Content"]


def test_each_handled_message_logs_one_line_saying_what_happened(bot, log_lines):
    """At debug level (metrics count messages in production); its shape is what it was."""
    logging.getLogger("gift_bot.wechat").setLevel(logging.DEBUG)
    bot.wx.text("o_alice", "礼品")
    bot.wx.click("o_alice", "GIFTS")
    handled = [line for line in log_lines() if line.get("event") == "message handled"]
    assert len(handled) == 2
    text, click = handled
    assert text["kind"] == "text" and text["wechat_event"] == "" and text["reply"] == "Text"
    assert click["kind"] == "event" and click["wechat_event"] == "click"
    logging.getLogger("gift_bot.wechat").setLevel(logging.NOTSET)
    for line in handled:
        assert line["level"] == "debug" and line["logger"] == "gift_bot.wechat"
        assert re.fullmatch(r"[0-9a-f]{12}", line["user"]) and isinstance(line["ms"], float)
        assert "o_alice" not in json.dumps(line, ensure_ascii=False), "never an OpenID in a log"


def test_a_used_nonce_with_another_body_is_a_replay_and_changes_nothing(bot):
    query = bot.wx.signed_query(nonce="n-replayed")
    first = bot.wx.post_raw(bot.wx.text_xml("o_alice", "礼品", msg_id=5001), query)
    assert first[0] == 200
    forged = bot.wx.text_xml("o_mallory", "礼品", msg_id=5002)
    assert bot.wx.post_raw(forged, query)[0] == 403
    assert not User.select().where(User.openid == "o_mallory").exists()
    assert InboundMessage.select().count() == 1


def test_the_same_body_under_the_same_nonce_is_wechats_retry(bot):
    query = bot.wx.signed_query(nonce="n-retried")
    xml = bot.wx.text_xml("o_alice", "礼品", msg_id=5003)
    first, again = bot.wx.post_raw(xml, query), bot.wx.post_raw(xml, query)
    assert first[0] == again[0] == 200
    sent = Push.of(xml)
    assert seen(bot.wx.read_reply(first[1], sent)) == seen(bot.wx.read_reply(again[1], sent))


def test_replay_guards_and_stored_replies_are_pruned_after_their_window(bot):
    from bot.chat import pushes
    from storage.models import PushNonce

    bot.wx.text("o_alice", "礼品")
    assert PushNonce.select().count() == 1 and InboundMessage.select().count() == 1
    pushes.prune(bot.clock() + dt.timedelta(minutes=5))
    assert PushNonce.select().count() == 1 and InboundMessage.select().count() == 1
    pushes.prune(bot.clock() + dt.timedelta(minutes=11))
    assert PushNonce.select().count() == 0 and InboundMessage.select().count() == 0


def test_pruning_goes_a_bounded_job_at_a_time_until_nothing_is_left(bot):
    """A campaign leaves tens of thousands of rows at each sweep: each prune job deletes at
    most `limit` of each kind, the newest stay, and the sweep calls it until it finds none."""
    from bot.chat import pushes
    from storage.models import PushNonce

    now = bot.clock()
    stamp = int(now.replace(tzinfo=dt.UTC).timestamp())
    for n in range(5):
        old = now - dt.timedelta(minutes=20, seconds=n)
        PushNonce.create(key=f"old{n}", body_sha256="0" * 64, stamp=stamp - 1200 - n)
        InboundMessage.create(key=f"old{n}", openid="o_a", received_at=old, reply=None)
    PushNonce.create(key="new", body_sha256="0" * 64, stamp=stamp)
    InboundMessage.create(key="new", openid="o_a", received_at=now, reply=None)

    assert [pushes.prune(now, limit=2) for _ in range(4)] == [4, 4, 2, 0]
    assert [p.key for p in PushNonce.select()] == ["new"]
    assert [m.key for m in InboundMessage.select()] == ["new"]

    PushNonce.create(key="old", body_sha256="0" * 64, stamp=stamp - 1200)
    bot.run(bot.services.sweep_once())
    assert [p.key for p in PushNonce.select()] == ["new"]


@pytest.mark.parametrize("signature", ["é", "０" * 40, "\x00", "a" * 5000])
def test_an_odd_signature_is_403_not_a_crash(bot, signature):
    query = bot.wx.signed_query() | {"signature": signature}
    assert bot.wx.post_raw(bot.wx.text_xml("o_a", "礼品"), query)[0] == 403


def test_a_huge_body_is_refused_before_it_is_read(bot):
    """Eight 95 MB POSTs once took the process from 60 MB to 840 MB before their 403."""
    query = urllib.parse.urlencode(bot.wx.signed_query())
    try:
        status = requests.post(
            f"{bot.url}/wechat?{query}", data=b"<xml>" + b"A" * 8_000_000, timeout=10
        ).status_code
    except requests.ConnectionError:
        status = None  # the server hung up mid-upload: refused all the same
    assert status in (None, 400, 413)
    assert User.select().count() == 0
    assert bot.wx.text("o_alice", "礼品")["MsgType"] == "text", "the server lives on"


def test_a_failed_request_logs_its_path_never_its_query(bot, log_lines):
    secret_query = "signature=0123abcd&timestamp=1&nonce=n&openid=o_secret&code=oauthcode"
    assert bot.wx.post_raw("<xml/>", dict(urllib.parse.parse_qsl(secret_query)))[0] == 403
    requests.get(f"{bot.url}/oauth/callback?code=oauthcode&state=s", timeout=10)
    deadline = time.monotonic() + 5  # a request's line is written just after its answer leaves
    while time.monotonic() < deadline:
        failed = [line for line in log_lines() if line.get("event") == "request failed"]
        if len(failed) == 2:
            break
        time.sleep(0.02)
    assert {(line["path"], line["status"], line["reason"]) for line in failed} == {
        ("/wechat", 403, "bad signature"),
        ("/oauth/callback", 400, ""),
    }
    everything = json.dumps(log_lines())
    assert "o_secret" not in everything and "oauthcode" not in everything
    assert "0123abcd" not in everything


def test_a_push_signed_over_a_5000_digit_timestamp_is_403_not_a_crash(bot, log_lines):
    """Review 2, F3: `int()` of over 4,300 digits raises; the time is read as 1-12 digits."""
    query = bot.wx.signed_query(timestamp="9" * 5000)
    status, text = bot.wx.post_raw(bot.wx.text_xml("o_a", "礼品"), query)
    assert status == 403 and "Traceback" not in text
    assert not [line for line in log_lines() if line.get("event") == "request crashed"]
    assert User.select().count() == 0


def test_a_signed_push_nested_6000_deep_is_400_not_a_crash(bot, log_lines):
    """Review 2, F3: reading nesting without a bound ran out of stack (RecursionError)."""
    deep = "<a>" * 6000 + "x" + "</a>" * 6000
    body = bot.wx.text_xml("o_a", "礼品").replace("</xml>", f"<Extra>{deep}</Extra></xml>")
    assert len(body) < 64 * 1024, "under the body limit: the parser has to read it"
    status, text = bot.wx.post_raw(body, bot.wx.signed_query())
    assert status == 400 and "Traceback" not in text
    assert not [line for line in log_lines() if line.get("event") == "request crashed"]
    assert User.select().count() == 0


def test_one_connection_carries_pushes_and_pages_in_turn(bot):
    """The pushes are answered ahead of the web application (handlers/wechat.py, Front); on one
    kept-alive connection, as WeChat's servers and browsers keep theirs, each request still gets
    its own answer, in order, whoever answers it."""
    connection = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=10)
    try:
        for path, body in [
            ("/wechat", bot.wx.text_xml("o_kept", "礼品")),
            ("/healthz", None),
            ("/wechat", bot.wx.text_xml("o_kept", "1")),
            ("/gifts/tea-longjing", None),
        ]:
            if body is None:
                connection.request("GET", path)
            else:
                query = urllib.parse.urlencode(bot.wx.signed_query(nonce=f"n{time.monotonic_ns()}"))
                connection.request("POST", f"{path}?{query}", body.encode())
            response = connection.getresponse()
            text = response.read().decode()
            assert response.status == 200, (path, text)
            if body is not None:
                reply = bot.wx.read_reply(text, Push.of(body, encrypted=False))
                assert reply["ToUserName"] == "o_kept"
                assert response.getheader("Content-Type") == "application/xml; charset=utf-8"
                assert response.getheader("Cache-Control") == "private, no-store"
                assert response.getheader("X-Content-Type-Options") == "nosniff"
                assert int(response.getheader("Content-Length")) == len(text.encode())
                sent = email.utils.parsedate_to_datetime(response.getheader("Date"))
                assert abs(sent.timestamp() - time.time()) < 5
    finally:
        connection.close()
    assert InboundMessage.select().where(InboundMessage.openid == "o_kept").count() == 2


def test_a_push_whose_sender_hung_up_is_handled_once_and_the_server_lives_on(bot):
    """WeChat gives up after 5 s and asks again: the message ran once, the retry gets its reply."""
    xml = bot.wx.text_xml("o_gone", "礼品", msg_id=777001)
    query = urllib.parse.urlencode(bot.wx.signed_query())
    body = xml.encode()
    with socket.create_connection(("127.0.0.1", bot.port), timeout=10) as sock:
        sock.sendall(
            f"POST /wechat?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    deadline = time.monotonic() + 5
    while InboundMessage.select().where(InboundMessage.openid == "o_gone").count() == 0:
        assert time.monotonic() < deadline, "the push was never handled"
        time.sleep(0.02)
    assert bot.wx.post_raw(xml, bot.wx.signed_query())[0] == 200
    assert InboundMessage.select().where(InboundMessage.openid == "o_gone").count() == 1
    assert bot.wx.text("o_alive", "礼品")["MsgType"] == "text"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_callback_are_refused(bot, method):
    query = bot.wx.signed_query()
    r = requests.request(method, f"{bot.url}/wechat", params=query, data=b"<xml/>", timeout=10)
    assert r.status_code == 405
    assert User.select().count() == 0


def test_a_push_with_a_crowd_of_query_fields_is_400_and_changes_nothing(bot):
    query = bot.wx.signed_query() | {f"x{i}": "1" for i in range(40)}
    assert bot.wx.post_raw(bot.wx.text_xml("o_crowd", "礼品"), query)[0] == 400
    assert User.select().count() == 0


def test_a_crash_writing_the_answer_is_a_500_logged_by_path_and_the_server_lives_on(
    bot, log_lines, monkeypatch
):
    from handlers import wire

    def broken(*args, **kwargs):
        raise RuntimeError("the reply could not be written")

    monkeypatch.setattr(wire, "write_reply", broken)
    status, text = bot.wx.post_raw(bot.wx.text_xml("o_crash", "礼品"), bot.wx.signed_query())
    monkeypatch.undo()
    assert (status, text) == (500, "500")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = {line.get("event"): line for line in log_lines()}
        if "request failed" in lines:
            break
        time.sleep(0.02)
    assert lines["request crashed"]["path"] == "/wechat"
    assert (lines["request failed"]["status"], lines["request failed"]["level"]) == (500, "error")
    assert "o_crash" not in json.dumps(log_lines(), ensure_ascii=False)
    assert bot.wx.text("o_crash", "礼品")["MsgType"] == "text"
