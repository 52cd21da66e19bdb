"""The wire module on its own: what WeChat would refuse of a reply (the sandbox's red warning),
CDATA that holds any text, and pushes read the way WeChat writes them."""

from __future__ import annotations

import time

import pytest
from conftest import AES_KEY

from bot.chat.incoming import Incoming
from bot.replies import Card, Text
from handlers import wire, wire_peer


def push(kind: str = "text", **extra) -> Incoming:
    fields = {"ToUserName": "gh_account", "FromUserName": "o_user", "CreateTime": int(time.time())}
    fields |= {"MsgType": kind, **extra}
    return wire.incoming(wire.parse(wire_peer.push_xml(fields)))


def problems(xml: str, msg=None) -> tuple[str, ...]:
    return wire_peer.open_reply(
        xml, msg or push("text", Content="hi", MsgId=1), None, time.time()
    ).problems


def test_our_replies_break_no_rule():
    msg = push("text", Content="hi", MsgId=1)
    card = Card(title="t", description="d", picurl="https://x/p.png", url="https://x/c")
    for reply in (Text("你好 ]]> &"), card):
        assert problems(wire.write_reply(reply, msg, None), msg) == ()


def test_a_reply_addressed_backwards_would_be_dropped():
    msg = push("text", Content="hi", MsgId=1)
    backwards = (
        wire.reply_xml(Text("hi"), msg).replace("o_user", "@@").replace("gh_account", "o_user")
    )
    found = problems(backwards.replace("@@", "gh_account"), msg)
    assert any("ToUserName" in p for p in found) and any("FromUserName" in p for p in found)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("<CreateTime>", "<CreateTime>x"), "CreateTime"),
        (("[text]", "[telegram]"), "MsgType"),
    ],
)
def test_each_broken_rule_is_named(change, reason):
    xml = wire.reply_xml(Text("hi"), push("text", Content="hi", MsgId=1))
    assert any(reason in p for p in problems(xml.replace(*change)))


def test_two_articles_answering_a_message_would_be_dropped():
    msg = push("text", Content="hi", MsgId=1)
    card = Card(title="t", description="d", picurl="https://x/p.png", url="https://x/c")
    xml = wire.reply_xml(card, msg)
    item = xml[xml.index("<item>") : xml.index("</item>") + len("</item>")]
    doubled = xml.replace(item, item * 2)
    assert any("ArticleCount" in p for p in problems(doubled, msg))
    assert any("2 articles" in p for p in problems(doubled.replace(">1<", ">2<"), msg))


def test_in_safe_mode_a_plaintext_reply_and_a_forged_signature_are_named():
    crypt = wire.make_crypt("token123", AES_KEY, "wx123")
    msg = push("text", Content="hi", MsgId=1)
    plain = wire.reply_xml(Text("hi"), msg)
    assert wire_peer.open_reply(plain, msg, crypt, time.time()).problems
    sealed = wire.write_reply(Text("hi"), msg, crypt)
    assert wire_peer.open_reply(sealed, msg, crypt, time.time()).problems == ()
    forged = sealed.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0")
    assert "MsgSignature" in wire_peer.open_reply(forged, msg, crypt, time.time()).problems[0]


def test_a_voice_message_with_recognition_is_the_text_said_without_added_punctuation():
    msg = push("voice", MediaId="m", Format="amr", Recognition="13800138000。", MsgId=2)
    assert (msg.kind, msg.text, msg.spoken) == ("text", "13800138000", True)
    silent = push("voice", MediaId="m", Format="amr", MsgId=3)
    assert (silent.kind, silent.text) == ("voice", "")


def test_push_xml_keeps_any_text_and_reads_back_unchanged():
    typed = "A&B <3 ]]> 祝你"
    msg = push("text", Content=typed, MsgId=4)
    assert msg.text == typed


PUSH = "<xml><FromUserName>o_user</FromUserName><MsgType>text</MsgType><Content>{}</Content></xml>"
DTD = '<!DOCTYPE xml [<!ENTITY w "礼品">]>'


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_a_dtd_is_refused_in_any_encoding(encoding, declared):
    """Review 2, F4: a byte search for `<!DOCTYPE` missed it in UTF-16, and ElementTree
    expanded the entity. Now a body not in UTF-8 is refused, and the parser refuses any DTD
    in one that is."""
    head = f'<?xml version="1.0" encoding="{encoding.upper()}"?>' if declared else ""
    body = (head + DTD + PUSH.format("&w;")).encode(encoding)
    reason = "a DTD" if encoding == "utf-8" else "not UTF-8"
    with pytest.raises(wire.WireError, match=reason) as refused:
        wire.parse(body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "dtd",
    [
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>',  # an external entity
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/push.dtd">',  # an external subset
        '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',  # a parameter one
        '<!DOCTYPE xml [<!ENTITY a "' + "礼" * 10_000 + '">'  # a bomb: 10^6 characters
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
    ],
    ids=["external-entity", "external-subset", "parameter-entity", "bomb"],
)
def test_a_dtd_is_refused_where_it_starts_before_any_declaration_is_read(dtd):
    """The parser stops at `<!DOCTYPE`: nothing it declares is read, fetched or expanded
    (the file's entity would read as its text, the bomb's as a megabyte)."""
    for use in ("&e;", "&c;", "礼品"):
        with pytest.raises(wire.WireError, match="a DTD") as refused:
            wire.parse((dtd + PUSH.format(use)).encode("utf-8"))
        assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        PUSH.format("礼品").encode("utf-16"),  # a byte-order mark
        PUSH.format("礼品").encode("utf-16-le"),  # none: NULs
        PUSH.format("礼品").encode("utf-32-be"),
        ('<?xml version="1.0" encoding="GBK"?>' + PUSH.format("ok")).encode("utf-8"),
        ("<?xml version='1.0' encoding='iso-8859-1'?>" + PUSH.format("ok")).encode("utf-8"),
        PUSH.format("礼品").encode("gbk"),  # bytes that are not UTF-8
    ],
    ids=["utf-16-bom", "utf-16-le", "utf-32-be", "declared-gbk", "declared-latin1", "gbk-bytes"],
)
def test_a_body_that_is_not_utf8_is_refused(body):
    with pytest.raises(wire.WireError, match="not UTF-8") as refused:
        wire.parse(body)
    assert refused.value.status == 400


def test_utf8_declared_or_not_with_or_without_its_mark_is_read():
    for head in ("", '<?xml version="1.0" encoding="UTF-8"?>', "\ufeff", "<?xml version='1.0'?>"):
        assert wire.parse((head + PUSH.format("礼品")).encode("utf-8"))["Content"] == "礼品"


# -- the limits, at their edges -----------------------------------------------------------

TOKEN = "t0ken"


def signed(timestamp: str, nonce: str = "n0nce") -> dict[str, str]:
    return {"timestamp": timestamp, "nonce": nonce,
            "signature": wire.signature(TOKEN, timestamp, nonce)}  # fmt: skip


def test_a_push_is_believed_up_to_five_minutes_either_way_and_not_a_second_more():
    now = 1_790_000_000
    for skew in (-300, 0, 300):
        wire.check_query(TOKEN, signed(str(now + skew)), now)
    for skew in (-301, 301):
        with pytest.raises(wire.WireError, match="stale") as refused:
            wire.check_query(TOKEN, signed(str(now + skew)), now)
        assert (refused.value.status, str(refused.value)) == (403, "stale timestamp")
    with pytest.raises(wire.WireError, match="bad signature"):
        wire.check_query(TOKEN, signed(str(now)) | {"signature": "0" * 40}, now)


@pytest.mark.parametrize(
    "text, read",
    [("1", 1), ("0", 0), ("9" * 12, 10**12 - 1), ("9" * 13, None), ("", None), ("١٢", None),
     ("-5", None), ("1.5", None), (None, None), (1790000000, None)],
)  # fmt: skip
def test_a_time_is_one_to_twelve_ascii_digits(text, read):
    assert wire.seconds(text) == read


def nested(depth: int) -> str:
    """A push whose extra element nests `depth` elements below the root (the root is 0)."""
    return PUSH.format("礼品").replace("</xml>", "<a>" * depth + "x" + "</a>" * depth + "</xml>")


def test_a_push_nested_eight_deep_is_read_and_nine_deep_refused():
    assert wire.parse(nested(8))["a"] is not None
    with pytest.raises(wire.WireError, match="nested deeper than 8") as refused:
        wire.parse(nested(9))
    assert refused.value.status == 400


def test_a_push_needs_a_sender_a_kind_and_a_time():
    base = {"ToUserName": "gh_account", "FromUserName": "o_user", "CreateTime": 1790000000,
            "MsgType": "text", "Content": "hi"}  # fmt: skip
    assert wire.incoming(wire.parse(wire_peer.push_xml(base))).create_time == 1790000000
    for missing in ("FromUserName", "MsgType", "CreateTime"):
        fields = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(wire.WireError, match="missing") as refused:
            wire.incoming(wire.parse(wire_peer.push_xml(fields)))
        assert refused.value.status == 400
    for sender in ("", " ", "o" * 65):  # nothing, blank (read as ""), too long
        with pytest.raises(wire.WireError, match="missing"):
            wire.incoming(wire.parse(wire_peer.push_xml(base | {"FromUserName": sender})))
    for sender in ("o", "o" * 64):  # one character, and 64
        assert wire.incoming(wire.parse(wire_peer.push_xml(base | {"FromUserName": sender})))


def test_safe_mode_opens_only_a_push_sealed_for_our_account():
    crypt = wire.make_crypt(TOKEN, AES_KEY, "wx0our0app0id00000")
    now = 1_790_000_000
    xml = wire_peer.push_xml({"ToUserName": "gh_account", "FromUserName": "o_user",
                         "CreateTime": now, "MsgType": "text", "Content": "礼品"})  # fmt: skip
    query, body = wire_peer.seal_push(xml, TOKEN, crypt, now, account="gh_account")
    assert wire.open_push(body.encode(), query, crypt)["Content"] == "礼品"

    def refused(body, query, crypt) -> tuple[int, str]:
        with pytest.raises(wire.WireError) as error:
            wire.open_push(body if isinstance(body, bytes) else body.encode(), query, crypt)
        return error.value.status, error.value.reason

    plain = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    assert refused(xml, plain, crypt) == (400, "plaintext message in safe mode")
    assert refused(body, query, None) == (400, "safe mode message, but no encoding_aes_key set")
    no_encrypt = wire_peer.push_xml({"ToUserName": "gh_account", "Other": "x"})
    assert refused(no_encrypt, query, crypt) == (400, "no Encrypt element")
    assert refused(body, query | {"msg_signature": "0" * 40}, crypt) == (403, "bad msg_signature")
    other = wire.make_crypt(TOKEN, AES_KEY, "wx0another0app0id0")
    query, sealed = wire_peer.seal_push(xml, TOKEN, other, now, account="gh_account")
    assert refused(sealed, query, crypt) == (400, "cannot decrypt")  # another account's AppID


@pytest.mark.parametrize(
    "body, reason",
    [
        ("<!DOCTYPE xml>" + PUSH.format("礼品"), "a DTD"),  # a DTD with no entity in it
        ("<foo><Content>礼品</Content></foo>", "malformed XML"),  # not WeChat's root
        ("<xml></xml>", "malformed XML"),  # nothing in it
        ("<xml>礼品</xml>", "malformed XML"),
        ("<xml><Content>礼品</Content>", "malformed XML"),  # cut short
    ],
    ids=["plain-doctype", "other-root", "empty", "text-only", "unclosed"],
)
def test_only_wechats_own_shape_of_xml_is_read(body, reason):
    with pytest.raises(wire.WireError, match=reason) as refused:
        wire.parse(body.encode())
    assert refused.value.status == 400


def test_repeated_elements_are_read_as_a_list_of_all_of_them():
    body = "<xml><PicList><item>a</item><item>b</item><item>c</item></PicList></xml>"
    assert wire.parse(body.encode())["PicList"]["item"] == ["a", "b", "c"]


def test_utf16_without_a_mark_is_refused_for_its_nul_characters():
    body = "<xml><Content>hi</Content></xml>".encode("utf-16-le")  # ASCII: decodes as UTF-8
    with pytest.raises(wire.WireError, match="NUL characters") as refused:
        wire.parse(body)
    assert refused.value.status == 400


def test_a_reply_is_read_as_wechat_reads_it_at_the_edges_of_its_rules():
    msg = push("text", Content="hi", MsgId=1)
    now = 1_790_000_000
    for skew, late in ((300, False), (301, True)):
        xml = wire.reply_xml(Text("hi"), msg, now - skew)
        found = wire_peer.open_reply(xml, msg, None, now).problems
        assert any("CreateTime" in p for p in found) == late, skew
    empty = wire.reply_xml(Text("hi"), msg, now).replace("<![CDATA[hi]]>", "")
    assert "a text reply with no Content" in wire_peer.open_reply(empty, msg, None, now).problems
    event = push("event", Event="CLICK", EventKey="GIFTS")
    card = Card(title="t", description="d", picurl="https://x/p.png", url="https://x/c")
    one = wire.reply_xml(card, event, now)
    item = one[one.index("<item>") : one.index("</item>") + len("</item>")]
    for count, dropped in ((8, False), (9, True)):
        many = one.replace(item, item * count).replace(
            "<ArticleCount>1</ArticleCount>", f"<ArticleCount>{count}</ArticleCount>"
        )
        found = wire_peer.open_reply(many, event, None, now).problems
        assert any("WeChat takes 1 to 8" in p for p in found) == dropped, count
