"""Whatever arrives, never a 500 and never a traceback (property-based, with hypothesis).

- every form field's parser: a value that passes its own check and shows, or Invalid whose
  reason renders;
- every free-text field (blessing, name, address, thank-you note): what it keeps holds no
  hidden character and no link, and a hidden character anywhere is refused;
- the callback's query and body: 200, 400, 403 or 413, and nothing kept on a refusal;
- the chat's words, at the top level and inside a form: a reply, never the apology that
  stands for a crash inside the bot.
"""

from __future__ import annotations

import datetime as dt
import string
import urllib.parse
from types import SimpleNamespace

import pytest
from conftest import LiveBot
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from wechat_sim import cdata

from bot.codes import Code
from bot.forms.base import FormContext, Invalid
from bot.forms.order import OrderForm
from bot.forms.safety import has_markup, hidden
from bot.forms.share import ShareForm
from bot.gifting import thanks
from bot.gifting.shares import Allowance
from bot.render import Renderer

CRASH = "出了点问题"  # chat/sorry.txt: what the bot says when something inside it failed
SOME = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

# Text people type, and text made to break parsers: digits of every script, huge numbers,
# control and format characters, markup, CDATA ends, surrogates are not text so not here.
typed = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789０１２３①②③²³٣७", max_size=12),
    st.integers(min_value=0).map(lambda n: str(n) * 5000).map(lambda s: s[:6000]),
    st.sampled_from(
        [
            "①",
            "²",
            "9" * 5000,
            "\x00",
            "\u202e",
            "]]>",
            "<a href='x'>y</a>",
            "领取 " + "A" * 300,
            "修改 ①",
            "修改 99999999999",
            "确认",
            "返回",
            "取消",
            "继续",
            "更多",
            "跳过",
            " ",
        ]
    ),  # fmt: skip
)


def xml_legal(text: str) -> str:
    """What WeChat can send at all: XML 1.0 has no place for most control characters."""
    return "".join(
        ch for ch in text
        if ch in "\t\n\r" or (ch >= " " and ch not in "\ufffe\uffff" and not "\ud800" <= ch <= "\udfff")
    )  # fmt: skip


said = typed.map(xml_legal)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    bot = LiveBot({}, f"sqlite:///{tmp_path_factory.mktemp('props') / 'bot.db'}")
    yield bot
    bot.stop()


# -- the form fields ---------------------------------------------------------------


def forms(config) -> list:
    gift = SimpleNamespace(
        id="flowers", name="鲜花一束", available=5, variants=["玫瑰", "向日葵"], price=19900,
        active=True,
    )  # fmt: skip
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    allowance = Allowance(units=20, held=0, shares_this_hour=0, next_share_at=None)
    ctx = FormContext(config, now, {"gift": gift, "allowance": allowance})
    return [OrderForm(ctx), ShareForm(ctx)]


@given(text=typed)
@SOME
def test_every_field_parses_to_a_value_or_a_reason_that_renders(live, text):
    renderer = Renderer(live.config)
    for form in forms(live.config):
        for field in form.fields:
            try:
                value = field.parse(text, form.ctx)
            except Invalid as refused:
                assert renderer.error(refused)  # StrictUndefined: every param is there
                continue
            assert field.check(value, form.ctx) == value
            assert isinstance(field.show(value, form.ctx), str)


# -- free text: nothing hidden, no link ----------------------------------------------

# Hosts and addresses in every disguise: any top-level domain, an IP address, full-width.
links = st.from_regex(
    r"[a-z0-9][a-z0-9-]{0,10}\.[a-z]{2,12}(?:/x)?", fullmatch=True
) | st.from_regex(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?:/claim)?", fullmatch=True)


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


disguised_links = st.builds(
    lambda before, link, wide: before + (full_width(link) if wide else link),
    st.sampled_from(["", "快来 ", "领取请到"]),
    links,
    st.booleans(),
)
free_typed = st.one_of(
    typed,
    disguised_links,
    st.text(st.characters(categories=["Lo", "So", "Ll", "Zs", "Cf", "Cc", "Zl", "Zp", "Mn"])),
)
# What a person might have wanted to write, and a character nobody sees to slip into it.
plain_words = st.sampled_from(["祝你生日快乐", "收到啦，好喜欢", "张小红", "谢谢你的茶"])
hidden_characters = st.characters(categories=["Cf", "Co"]) | st.sampled_from(
    ["\u202e", "\u2066", "\u200b", "\U000e0041", "\u3164", "\U000e0100", "\x1b", "\x00"]
)


def free_text_fields(config) -> dict:
    """Each field a person fills in freely, as its form (or the note's check) reads it."""
    order, share = forms(config)
    return {
        "blessing": lambda text: share.field("blessing").parse(text, share.ctx),
        "name": lambda text: order.field("name").parse(text, order.ctx),
        "address": lambda text: order.field("address").parse(
            "广东省深圳市南山区科技园南区8栋1201 " + text, order.ctx
        ),
        "thanks": lambda text: thanks.check(config, text),
    }


@given(link=disguised_links)
@SOME
def test_a_link_in_any_disguise_is_refused_in_every_free_text_field(live, link):
    for name, parse in free_text_fields(live.config).items():
        with pytest.raises(Invalid) as refused:
            parse(link)
        reasons = (Code.MARKUP_REFUSED, Code.NAME_INVALID, Code.NAME_TOO_LONG)  # a name's own
        assert refused.value.code in reasons, (name, link)


@given(text=free_typed)
@SOME
def test_whatever_a_free_text_field_keeps_holds_nothing_hidden_and_no_link(live, text):
    for name, parse in free_text_fields(live.config).items():
        try:
            value = parse(text)
        except Invalid:
            continue
        kept = value if isinstance(value, str) else value["detail"]
        assert hidden(kept, lines=True) == [], (name, text, kept)
        assert not has_markup(kept), (name, text, kept)


@given(words=plain_words, character=hidden_characters, at=st.integers(min_value=1))
@SOME
def test_a_hidden_character_anywhere_in_free_text_is_refused(live, words, character, at):
    text = words[: at % len(words)] + character + words[at % len(words) :]
    for name, parse in free_text_fields(live.config).items():
        with pytest.raises(Invalid) as refused:
            parse(text)
        assert refused.value.code == Code.HIDDEN_CHARACTERS, (name, text)


# -- the callback ------------------------------------------------------------------

query_values = st.text(alphabet=string.printable + "éü中①", max_size=40)


@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "signature",
                "timestamp",
                "nonce",
                "echostr",
                "encrypt_type",
                "msg_signature",
                "openid",
            ]
        ),
        query_values,
    ),  # fmt: skip
    body=st.binary(max_size=300),
)
@SOME
def test_an_unsigned_or_odd_request_is_refused_never_a_crash(live, query, body):
    status, text = live.wx.post_raw(body, query)
    assert status in (400, 403, 413) and "Traceback" not in text


fields = st.fixed_dictionaries(
    {
        "MsgType": st.sampled_from(["text", "event", "image", "voice", "link", "", "TEXT", "x"]),
        "Content": said,
        "Event": st.sampled_from(["subscribe", "SCAN", "CLICK", "unsubscribe", "", "x" * 300]),
        "EventKey": st.one_of(said, st.just("qrscene_" + "A" * 22)),
        "Recognition": said,
        "MsgId": st.one_of(st.integers().map(str), said),
        "CreateTime": st.one_of(st.just("NOW"), said),
        "FromUserName": st.one_of(st.just("o_prop"), said),
    }
)


@given(push=fields)
@SOME
def test_a_signed_push_with_any_fields_gets_an_answer_or_a_400(live, push):
    push = dict(push)
    if push["CreateTime"] == "NOW":
        push["CreateTime"] = str(live.wx.clock())
    body = (
        "<xml><ToUserName><![CDATA[gh_test_account]]></ToUserName>"
        + "".join(f"<{name}>{cdata(value)}</{name}>" for name, value in push.items())
        + "</xml>"
    )
    status, text = live.wx.post_raw(body.encode("utf-8", "replace"), live.wx.signed_query(
        nonce=urllib.parse.quote(str(hash(body)))
    ))  # fmt: skip
    assert status in (200, 400) and "Traceback" not in text
    assert CRASH not in text


@given(
    push=fields,
    encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]),
)
@SOME
def test_a_signed_push_written_in_another_encoding_is_a_400(live, push, encoding):
    """WeChat writes UTF-8: UTF-16 or UTF-32, marked or not, is refused, never parsed as it
    says (a DTD in it went past a byte search: review 2, F4)."""
    body = "<xml>" + "".join(f"<{name}>{cdata(value)}</{name}>" for name, value in push.items())
    body += "</xml>"
    raw = body.encode(encoding, "replace")
    assume(len(raw) < 60_000)  # a larger body is refused before it is read (its own test)
    status, text = live.wx.post_raw(raw, live.wx.signed_query(nonce=str(abs(hash(raw)))))
    assert status == 400 and "Traceback" not in text


# -- the chat ----------------------------------------------------------------------


@given(words=st.lists(said, min_size=1, max_size=6))
@SOME
def test_any_words_at_the_top_level_or_inside_a_form_never_crash_the_bot(live, words):
    for start in ([], ["1", "送"], ["3", "送", "1", "跳过"]):
        for text in [*start, *words]:
            reply = live.wx.text("o_words", text)
            assert reply is not None and CRASH not in str(reply), (text, reply)
        live.wx.text("o_words", "取消")


@pytest.mark.parametrize("text", ["①", "²", "9" * 5000, "٣"])
def test_the_audits_odd_numbers_get_an_answer_not_a_crash(live, text):
    """isdigit() said yes, int() said no: a circled one, a superscript, 5,000 digits."""
    for start in ([], ["3", "送"], ["取消", "礼品"]):
        for word in [*start, text]:
            reply = live.wx.text("o_odd", word)
            assert CRASH not in reply["Content"] if reply["MsgType"] == "text" else True
    live.wx.text("o_odd", "取消")
    assert (
        live.wx.post_raw(
            live.wx.text_xml("o_odd", "1"), live.wx.signed_query() | {"signature": "é"}
        )[0]
        == 403
    )
