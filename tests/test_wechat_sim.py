"""The WeChat simulator itself, with no gift-bot involved: a tiny local server answers each push
with a canned reply, and the simulator must refuse exactly what WeChat would drop.

The canned server seals its safe-mode replies with its own few lines of §1 crypto (below), not
with the simulator's, so a mistake in one does not hide in the other; the official sample
vectors at the bottom pin both.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechat_sim import (
    ACCOUNT,
    SAMPLES,
    Dropped,
    HttpError,
    Push,
    WeChatSim,
    load_sample,
    sample_kinds,
    sha1_signature,
)

TOKEN = "sim-token"
APP_ID = "wx_sim_app_id"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
KEY = base64.b64decode(AES_KEY + "=")


# -- the canned bot's own crypto and replies ------------------------------------------------


def cd(text: str) -> str:
    return f"<![CDATA[{text}]]>"


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def seal(xml: str, app_id: str = APP_ID, break_padding: bool = False) -> str:
    body = xml.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    if break_padding:  # the count says more bytes than there are equal pad bytes
        plain = plain[:-1] + bytes([pad + 1 if pad < 32 else 31])
    enc = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def unseal(encrypted: str) -> str:
    dec = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    content = plain[16 : -plain[-1]]
    (length,) = struct.unpack(">I", content[:4])
    return content[4 : 4 + length].decode()


def envelope(xml: str, *, app_id: str = APP_ID, signature: str = "", break_padding=False) -> str:
    encrypted = seal(xml, app_id, break_padding)
    timestamp, nonce = str(int(time.time())), "canned"
    signature = signature or sha1_sorted(TOKEN, timestamp, nonce, encrypted)
    return (
        f"<xml><Encrypt>{cd(encrypted)}</Encrypt><MsgSignature>{cd(signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cd(nonce)}</Nonce></xml>"
    )


NOW = "now"


def reply(push: dict, body: str, *, to=None, sender=None, created=NOW) -> str:
    """A reply to `push`, addressed as WeChat wants unless told otherwise; created=None omits it."""
    to = push["FromUserName"] if to is None else to
    sender = push["ToUserName"] if sender is None else sender
    head = f"<ToUserName>{cd(to)}</ToUserName><FromUserName>{cd(sender)}</FromUserName>"
    if created is not None:
        head += f"<CreateTime>{int(time.time()) if created == NOW else created}</CreateTime>"
    return f"<xml>{head}{body}</xml>"


def text_body(content: str = "你好") -> str:
    return f"<MsgType>{cd('text')}</MsgType><Content>{cd(content)}</Content>"


def news_body(items: int, count: int | None = None) -> str:
    item = (
        f"<item><Title>{cd('明前龙井')}</Title><Description>{cd('送你一盒茶')}</Description>"
        f"<PicUrl>{cd('https://x/p.png')}</PicUrl><Url>{cd('https://x/claim/t')}</Url></item>"
    )
    count = items if count is None else count
    return f"<MsgType>{cd('news')}</MsgType><ArticleCount>{count}</ArticleCount><Articles>{item * items}</Articles>"


# -- the canned bot: a tiny HTTP server on a free port ----------------------------------------


class CannedBot:
    """Answers each POST /wechat with `answer(push)` (push: the decrypted fields), after `delay`."""

    def __init__(self):
        self.answer = lambda push: "success"
        self.delay = 0.0
        self.status = 200
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def _handler(self):
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                bot.requests.append({"query": query, "body": body})
                xml = body
                if query.get("encrypt_type") == "aes":
                    xml = unseal(ET.fromstring(body).findtext("Encrypt"))
                push = {child.tag: (child.text or "") for child in ET.fromstring(xml)}
                answer = bot.answer(push).encode()
                time.sleep(bot.delay)
                self.send_response(bot.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                """Quiet: pytest shows what matters."""

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bot():
    canned = CannedBot()
    yield canned
    canned.close()


@pytest.fixture
def plain(bot):
    return WeChatSim(bot.url, TOKEN, APP_ID)


@pytest.fixture
def safe(bot):
    return WeChatSim(bot.url, TOKEN, APP_ID, aes_key=AES_KEY)


@pytest.fixture(params=["plain", "safe"])
def mode(request, bot):
    """(simulator, wrap): wrap seals a reply in safe mode and leaves it alone in plaintext."""
    if request.param == "plain":
        return WeChatSim(bot.url, TOKEN, APP_ID), lambda xml: xml
    return WeChatSim(bot.url, TOKEN, APP_ID, aes_key=AES_KEY), envelope


# -- good replies pass, in both modes ---------------------------------------------------------


def test_a_text_reply_addressed_as_wechat_wants_is_read(bot, mode):
    wx, wrap = mode
    bot.answer = lambda push: wrap(reply(push, text_body("欢迎")))
    got = wx.text("o_alice", "礼品")
    assert got["MsgType"] == "text" and got["Content"] == "欢迎"
    assert (got["ToUserName"], got["FromUserName"]) == ("o_alice", ACCOUNT)
    assert wx.transcript == [("o_alice", "礼品"), ("bot", "欢迎")]


def test_a_one_article_news_reply_to_a_message_is_read(bot, mode):
    wx, wrap = mode
    bot.answer = lambda push: wrap(reply(push, news_body(1)))
    got = wx.text("o_alice", "送")
    assert got["ArticleCount"] == "1" and got["article"]["Title"] == "明前龙井"


def test_an_event_may_get_eight_articles(bot, mode):
    wx, wrap = mode
    bot.answer = lambda push: wrap(reply(push, news_body(8)))
    assert len(wx.click("o_alice", "GIFTS")["articles"]) == 8


@pytest.mark.parametrize("body", ["success", ""], ids=["success", "empty"])
def test_success_and_an_empty_body_acknowledge_without_a_message(bot, mode, body):
    wx, _ = mode
    bot.answer = lambda push: body
    assert wx.text("o_alice", "hi") is None
    assert wx.transcript[-1] == ("bot", "(no reply)")


def test_media_replies_with_their_fields_are_read(bot, plain):
    media = f"<MsgType>{cd('image')}</MsgType><Image><MediaId>{cd('m1')}</MediaId></Image>"
    bot.answer = lambda push: reply(push, media)
    assert plain.text("o_alice", "图")["Image"] == {"MediaId": "m1"}


# -- refusals: each rule once ---------------------------------------------------------------

REFUSALS = {
    "backwards": (
        lambda p: reply(p, text_body(), to=p["ToUserName"], sender=p["FromUserName"]),
        "addressed backwards",
    ),
    "another-user": (lambda p: reply(p, text_body(), to="o_someone_else"), "ToUserName"),
    "wrong-account": (lambda p: reply(p, text_body(), sender="gh_another_account"), "FromUserName"),
    "no-createtime": (lambda p: reply(p, text_body(), created=None), "no CreateTime"),
    "createtime-not-digits": (lambda p: reply(p, text_body(), created="soon"), "not a unix time"),
    "stale-createtime": (
        lambda p: reply(p, text_body(), created=int(time.time()) - 3600),
        "s from now (",
    ),
    "unknown-msgtype": (
        lambda p: reply(p, f"<MsgType>{cd('card')}</MsgType><Content>x</Content>"),
        "MsgType 'card'",
    ),
    "empty-content": (lambda p: reply(p, text_body("")), "empty Content"),
    "no-content": (lambda p: reply(p, f"<MsgType>{cd('text')}</MsgType>"), "without Content"),
    "image-without-mediaid": (
        lambda p: reply(p, f"<MsgType>{cd('image')}</MsgType><Image></Image>"),
        "without Image/MediaId",
    ),
    "articlecount-not-items": (lambda p: reply(p, news_body(1, count=2)), "ArticleCount '2'"),
    "two-articles-for-a-text": (lambda p: reply(p, news_body(2)), "2 articles answering a user's"),
    "not-xml-root": (lambda p: reply(p, text_body()).replace("xml>", "reply>"), "root element"),
    "not-xml": (lambda p: '{"msgtype": "text", "content": "hi"}', "not well-formed XML"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_reply_wechat_would_drop_fails_the_test_with_the_reason(bot, mode, case):
    wx, wrap = mode
    make, reason = REFUSALS[case]
    bot.answer = lambda push: wrap(make(push))
    with pytest.raises(Dropped, match=re.escape(reason)):
        wx.text("o_alice", "hi")


def test_nine_articles_are_too_many_even_for_an_event(bot, plain):
    bot.answer = lambda push: reply(push, news_body(9))
    with pytest.raises(Dropped, match="9 articles answering an event"):
        plain.click("o_alice", "GIFTS")


def test_every_user_message_kind_allows_one_article_only(bot, plain):
    bot.answer = lambda push: reply(push, news_body(2))
    for send in (
        lambda: plain.image("o_a"),
        lambda: plain.voice("o_a"),
        lambda: plain.video("o_a"),
        lambda: plain.shortvideo("o_a"),
        lambda: plain.location("o_a", "here"),
        lambda: plain.link("o_a", "t", "https://x"),
        lambda: plain.file("o_a", "f.pdf"),
    ):
        with pytest.raises(Dropped, match="2 articles answering a user's"):
            send()


def test_a_reply_after_the_deadline_is_dropped(bot, plain):
    plain.deadline = 0.2  # WeChat waits 5 s; the test need not
    bot.delay = 0.4
    bot.answer = lambda push: reply(push, text_body())
    with pytest.raises(Dropped, match="deadline"):
        plain.text("o_alice", "hi")


def test_createtime_is_compared_with_the_simulators_clock(bot, plain):
    plain.clock = lambda: 1_700_000_000  # a test moved the world's clock
    bot.answer = lambda push: reply(push, text_body(), created=1_700_000_100)
    assert plain.text("o_alice", "hi")["CreateTime"] == "1700000100"
    bot.answer = lambda push: reply(push, text_body())  # stamped with the real time
    with pytest.raises(Dropped, match="from now"):
        plain.text("o_alice", "hi")


def test_dropped_is_an_assertion_error_and_a_non_200_is_an_http_error(bot, plain):
    assert issubclass(Dropped, AssertionError)
    bot.status = 500
    with pytest.raises(HttpError) as refused:
        plain.text("o_alice", "hi")
    assert refused.value.status == 500


# -- safe mode ------------------------------------------------------------------------------


def test_a_plaintext_reply_to_an_encrypted_push_is_dropped(bot, safe):
    bot.answer = lambda push: reply(push, text_body())
    with pytest.raises(Dropped, match="plaintext reply to an encrypted push"):
        safe.text("o_alice", "hi")


def test_an_envelope_answering_a_plaintext_push_is_dropped(bot, plain):
    bot.answer = lambda push: envelope(reply(push, text_body()))
    with pytest.raises(Dropped, match="encrypted envelope answering a plaintext push"):
        plain.text("o_alice", "hi")


def test_a_bad_msg_signature_is_dropped(bot, safe):
    bot.answer = lambda push: envelope(reply(push, text_body()), signature="0" * 40)
    with pytest.raises(Dropped, match="MsgSignature"):
        safe.text("o_alice", "hi")


def test_a_reply_sealed_for_another_appid_is_dropped(bot, safe):
    bot.answer = lambda push: envelope(reply(push, text_body()), app_id="wx_another_app")
    with pytest.raises(Dropped, match="AppID 'wx_another_app'"):
        safe.text("o_alice", "hi")


def test_bad_pkcs7_padding_is_dropped(bot, safe):
    bot.answer = lambda push: envelope(reply(push, text_body()), break_padding=True)
    with pytest.raises(Dropped, match="padding"):
        safe.text("o_alice", "hi")


def test_an_envelope_without_its_nonce_is_dropped(bot, safe):
    bot.answer = lambda push: re.sub(r"<Nonce>.*</Nonce>", "", envelope(reply(push, text_body())))
    with pytest.raises(Dropped, match="no Nonce"):
        safe.text("o_alice", "hi")


def test_the_decrypted_reply_passes_every_plaintext_rule_too(bot, safe):
    backwards = lambda p: reply(p, text_body(), to=p["ToUserName"], sender=p["FromUserName"])  # noqa: E731
    bot.answer = lambda push: envelope(backwards(push))
    with pytest.raises(Dropped, match="addressed backwards"):
        safe.text("o_alice", "hi")


def test_pushes_are_signed_and_in_safe_mode_encrypted_as_wechat_does(bot, safe):
    safe.text("o_alice", "礼品")
    (sent,) = bot.requests
    q = sent["query"]
    assert q["signature"] == sha1_sorted(TOKEN, q["timestamp"], q["nonce"])
    outer = ET.fromstring(sent["body"])
    assert outer.findtext("ToUserName") == ACCOUNT and "礼品" not in sent["body"]
    encrypted = outer.findtext("Encrypt")
    assert q["encrypt_type"] == "aes"
    assert q["msg_signature"] == sha1_sorted(TOKEN, q["timestamp"], q["nonce"], encrypted)
    inner = ET.fromstring(unseal(encrypted))
    assert inner.findtext("FromUserName") == "o_alice" and inner.findtext("Content") == "礼品"


# -- read_reply on its own ----------------------------------------------------------------------


def test_read_reply_checks_against_the_last_push(bot, plain):
    bot.answer = lambda push: "success"
    plain.text("o_alice", "hi")
    good = reply({"FromUserName": "o_alice", "ToUserName": ACCOUNT}, text_body("ok"))
    assert plain.read_reply(good)["Content"] == "ok"
    stranger = reply({"FromUserName": "o_bob", "ToUserName": ACCOUNT}, text_body("ok"))
    with pytest.raises(Dropped, match="not the sender's OpenID 'o_alice'"):
        plain.read_reply(stranger)


def test_read_reply_needs_a_push_to_check_against():
    with pytest.raises(ValueError, match="needs the push"):
        WeChatSim("http://127.0.0.1:9", TOKEN, APP_ID).read_reply("<xml/>")


# -- the samples: one per documented push, well formed, with the documented fields -------------

# kind: (MsgType, Event exactly as documented, fields the docs give that kind)
DOCUMENTED = {
    "message_text": ("text", "", ["Content", "MsgId"]),
    "message_image": ("image", "", ["PicUrl", "MediaId", "MsgId"]),
    "message_voice": ("voice", "", ["MediaId", "Format", "MsgId"]),
    "message_voice_recognition": ("voice", "", ["MediaId", "Format", "Recognition", "MsgId"]),
    "message_video": ("video", "", ["MediaId", "ThumbMediaId", "MsgId"]),
    "message_shortvideo": ("shortvideo", "", ["MediaId", "ThumbMediaId", "MsgId"]),
    "message_location": ("location", "", ["Location_X", "Location_Y", "Scale", "Label", "MsgId"]),
    "message_link": ("link", "", ["Title", "Description", "Url", "MsgId"]),
    "message_file": ("file", "", ["Title", "FileKey", "FileMd5", "FileTotalLen", "MsgId"]),
    "event_subscribe": ("event", "subscribe", []),
    "event_subscribe_qrscene": ("event", "subscribe", ["EventKey", "Ticket"]),
    "event_unsubscribe": ("event", "unsubscribe", []),
    "event_scan": ("event", "SCAN", ["EventKey", "Ticket"]),
    "event_location": ("event", "LOCATION", ["Latitude", "Longitude", "Precision"]),
    "event_click": ("event", "CLICK", ["EventKey"]),
    "event_view": ("event", "VIEW", ["EventKey", "MenuId"]),
    "event_view_miniprogram": ("event", "view_miniprogram", ["EventKey", "MenuId"]),
    "event_scancode_push": (
        "event",
        "scancode_push",
        ["EventKey", "ScanCodeInfo/ScanType", "ScanCodeInfo/ScanResult"],
    ),
    "event_scancode_waitmsg": (
        "event",
        "scancode_waitmsg",
        ["EventKey", "ScanCodeInfo/ScanResult"],
    ),
    "event_pic_sysphoto": (
        "event",
        "pic_sysphoto",
        ["SendPicsInfo/Count", "SendPicsInfo/PicList/item/PicMd5Sum"],
    ),
    "event_pic_photo_or_album": (
        "event",
        "pic_photo_or_album",
        ["SendPicsInfo/PicList/item/PicMd5Sum"],
    ),
    "event_pic_weixin": ("event", "pic_weixin", ["SendPicsInfo/PicList/item/PicMd5Sum"]),
    "event_location_select": (
        "event",
        "location_select",
        [
            "SendLocationInfo/Location_X",
            "SendLocationInfo/Location_Y",
            "SendLocationInfo/Scale",
            "SendLocationInfo/Label",
            "SendLocationInfo/Poiname",
        ],
    ),
    "event_templatesendjobfinish_success": ("event", "TEMPLATESENDJOBFINISH", ["MsgID", "Status"]),
    "event_templatesendjobfinish_user_block": (
        "event",
        "TEMPLATESENDJOBFINISH",
        ["MsgID", "Status"],
    ),
    "event_templatesendjobfinish_system_failed": (
        "event",
        "TEMPLATESENDJOBFINISH",
        ["MsgID", "Status"],
    ),
    "event_masssendjobfinish": (
        "event",
        "MASSSENDJOBFINISH",
        [
            "MsgID",
            "Status",
            "TotalCount",
            "FilterCount",
            "SentCount",
            "ErrorCount",
            "CopyrightCheckResult/ResultList/item/ArticleIdx",
        ],
    ),
    "event_card_pass_check": ("event", "card_pass_check", ["CardId"]),
    "event_card_not_pass_check": ("event", "card_not_pass_check", ["CardId", "RefuseReason"]),
    "event_user_get_card": (
        "event",
        "user_get_card",
        ["CardId", "IsGiveByFriend", "UserCardCode", "OuterStr"],
    ),
    "event_user_gifting_card": (
        "event",
        "user_gifting_card",
        ["CardId", "UserCardCode", "IsReturnBack", "FriendUserName"],
    ),
    "event_user_del_card": ("event", "user_del_card", ["CardId", "UserCardCode"]),
    "event_user_consume_card": (
        "event",
        "user_consume_card",
        ["CardId", "UserCardCode", "ConsumeSource"],
    ),
    "event_user_view_card": ("event", "user_view_card", ["CardId", "UserCardCode"]),
    "event_card_sku_remind": ("event", "card_sku_remind", ["CardId", "Detail"]),
    "event_update_member_card": (
        "event",
        "update_member_card",
        ["CardId", "UserCardCode", "ModifyBonus", "ModifyBalance"],
    ),
    "event_submit_membercard_user_info": (
        "event",
        "submit_membercard_user_info",
        ["CardId", "UserCardCode"],
    ),
    "event_user_enter_session_from_card": (
        "event",
        "user_enter_session_from_card",
        ["CardId", "UserCardCode"],
    ),
    "event_kf_create_session": ("event", "kf_create_session", ["KfAccount"]),
    "event_kf_close_session": ("event", "kf_close_session", ["KfAccount"]),
    "event_kf_switch_session": ("event", "kf_switch_session", ["FromKfAccount", "ToKfAccount"]),
    "event_subscribe_msg_popup_event": (
        "event",
        "subscribe_msg_popup_event",
        [
            "SubscribeMsgPopupEvent/List/TemplateId",
            "SubscribeMsgPopupEvent/List/SubscribeStatusString",
            "SubscribeMsgPopupEvent/List/PopupScene",
        ],
    ),
    "event_subscribe_msg_change_event": (
        "event",
        "subscribe_msg_change_event",
        [
            "SubscribeMsgChangeEvent/List/TemplateId",
            "SubscribeMsgChangeEvent/List/SubscribeStatusString",
        ],
    ),
    "event_subscribe_msg_sent_event": (
        "event",
        "subscribe_msg_sent_event",
        [
            "SubscribeMsgSentEvent/List/TemplateId",
            "SubscribeMsgSentEvent/List/MsgID",
            "SubscribeMsgSentEvent/List/ErrorCode",
            "SubscribeMsgSentEvent/List/ErrorStatus",
        ],
    ),
    "event_qualification_verify_success": (
        "event",
        "qualification_verify_success",
        ["ExpiredTime"],
    ),
    "event_qualification_verify_fail": (
        "event",
        "qualification_verify_fail",
        ["FailTime", "FailReason"],
    ),
    "event_naming_verify_success": ("event", "naming_verify_success", ["ExpiredTime"]),
    "event_naming_verify_fail": ("event", "naming_verify_fail", ["FailTime", "FailReason"]),
    "event_annual_renew": ("event", "annual_renew", ["ExpiredTime"]),
    "event_verify_expired": ("event", "verify_expired", ["ExpiredTime"]),
}


def test_every_documented_kind_has_exactly_one_sample():
    assert sample_kinds() == sorted(DOCUMENTED)


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_a_sample_fills_in_to_a_well_formed_push_with_its_documented_fields(kind):
    wx = WeChatSim("http://127.0.0.1:9", TOKEN, APP_ID)
    wx.clock = lambda: 1_800_000_000
    msg_type, event, fields = DOCUMENTED[kind]
    root = ET.fromstring(wx.sample_xml(kind, "o_sample_user"))
    assert root.tag == "xml"
    assert root.findtext("ToUserName") == ACCOUNT
    assert root.findtext("FromUserName") == "o_sample_user"
    assert root.findtext("CreateTime") == "1800000000"
    assert root.findtext("MsgType") == msg_type
    assert (root.findtext("Event") or "") == event  # exact case: SCAN, CLICK, VIEW, LOCATION…
    if msg_type != "event":
        assert re.fullmatch(r"[0-9]+", root.findtext("MsgId"))
    for path in fields:
        assert root.find(path) is not None, f"{kind} lacks {path}"
    assert Push.of(wx.sample_xml(kind, "o_u")).from_user == (msg_type != "event")


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_each_sample_names_its_source(kind):
    head = (SAMPLES / f"{kind}.xml").read_text(encoding="utf-8").split("-->")[0]
    assert re.search(r"(Source: https://developers\.weixin\.qq\.com/|w7corp/easywechat)", head)
    assert "<!--" not in load_sample(kind)


def test_fields_replace_a_samples_text_and_unknown_fields_are_refused():
    wx = WeChatSim("http://127.0.0.1:9", TOKEN, APP_ID)
    xml = wx.sample_xml("event_scancode_push", "o_u", ScanResult="https://x/claim/t?a=1&b=2")
    assert ET.fromstring(xml).findtext("ScanCodeInfo/ScanResult") == "https://x/claim/t?a=1&b=2"
    voice = wx.sample_xml("message_voice_recognition", "o_u", Recognition="礼品]]>")
    assert ET.fromstring(voice).findtext("Recognition") == "礼品]]>"
    with pytest.raises(KeyError, match="no <Recognition>"):
        wx.sample_xml("message_voice", "o_u", Recognition="礼品")
    with pytest.raises(KeyError, match="no sample"):
        wx.sample_xml("event_unheard_of", "o_u")


def test_push_sample_sends_any_kind_and_reads_its_reply(bot, plain):
    bot.answer = lambda push: reply(push, news_body(3)) if push.get("Event") == "pic_weixin" else ""
    got = plain.push_sample("event_pic_weixin", "o_alice")
    assert len(got["articles"]) == 3
    assert bot.requests[-1]["body"].count("<PicMd5Sum>") == 1
    assert plain.push_sample("event_templatesendjobfinish_user_block", "o_alice") is None


# -- official sample vectors for safe mode ---------------------------------------------------------

# WXBizMsgCryptTest.java in the official sample code (cryptoDemo.zip, linked from
# https://developers.weixin.qq.com/doc/subscription/guide/dev/push/encryption.html):
# token pamtest, this EncodingAESKey, appid wxb11529c136998cb6, timestamp 1409304348, nonce
# xxxxxx, random prefix "aaaabbbbccccdddd" -> these ciphertexts.
PAMTEST = WeChatSim("http://127.0.0.1:9", "pamtest", "wxb11529c136998cb6", aes_key=AES_KEY)
PAMTEST_TEXT = "我是中文abcd123"
PAMTEST_CIPHER = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)
PAMTEST_REPLY = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime>"
    "<MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId>"
    "<Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
)
PAMTEST_REPLY_CIPHER = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wL"
    "Ma0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGI"
    "DIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1f"
    "BIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slT"
    "wo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf5"
    "7cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)

# Sample.py in the same download: token spamtest, appid wx2c2769f8efd9abc2, a pushed text message.
SPAMTEST = WeChatSim("http://127.0.0.1:9", "spamtest", "wx2c2769f8efd9abc2", aes_key=AES_KEY)
SPAMTEST_QUERY = {"timestamp": "1409735669", "nonce": "1320562132"}
SPAMTEST_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SPAMTEST_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9Fr"
    "XpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGz"
    "jlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYY"
    "I1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)


def test_official_pamtest_vector_decrypts_and_encrypts_byte_for_byte():
    assert PAMTEST.decrypt(PAMTEST_CIPHER) == PAMTEST_TEXT
    assert PAMTEST.encrypt(PAMTEST_TEXT, random_prefix=b"aaaabbbbccccdddd") == PAMTEST_CIPHER
    assert PAMTEST.decrypt(PAMTEST_REPLY_CIPHER) == PAMTEST_REPLY
    assert PAMTEST.encrypt(PAMTEST_REPLY, random_prefix=b"aaaabbbbccccdddd") == PAMTEST_REPLY_CIPHER


def test_official_pamtest_reply_passes_the_strict_reading_in_its_envelope():
    timestamp, nonce = "1409304348", "xxxxxx"
    signature = sha1_sorted("pamtest", timestamp, nonce, PAMTEST_REPLY_CIPHER)
    body = (
        f"<xml><Encrypt>{cd(PAMTEST_REPLY_CIPHER)}</Encrypt><MsgSignature>{cd(signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cd(nonce)}</Nonce></xml>"
    )
    wx = WeChatSim("http://127.0.0.1:9", "pamtest", "wxb11529c136998cb6", aes_key=AES_KEY)
    wx.clock = lambda: 1407743423
    push = Push("oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw", "gh_7f083739789a", "text", encrypted=True)
    got = wx.read_reply(body, push)
    assert got["MsgType"] == "video" and got["Video"]["Title"] == "testCallBackReplyVideo"
    other_app = WeChatSim("http://127.0.0.1:9", "pamtest", "wx_other", aes_key=AES_KEY)
    with pytest.raises(Dropped, match="AppID 'wxb11529c136998cb6'"):
        other_app.read_reply(body, push)


def test_official_python_sample_signature_and_decryption():
    query = SPAMTEST_QUERY
    signature = sha1_signature("spamtest", query["timestamp"], query["nonce"], SPAMTEST_ENCRYPT)
    assert signature == SPAMTEST_MSG_SIGNATURE
    pushed = ET.fromstring(SPAMTEST.decrypt(SPAMTEST_ENCRYPT))
    assert pushed.findtext("ToUserName") == "gh_10f6c3c3ac5a"
    assert pushed.findtext("FromUserName") == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert pushed.findtext("Content") == "abcdteT"
    assert pushed.findtext("MsgId") == "6054768590064713728"
