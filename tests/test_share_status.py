"""The giver on their own claim link: the share's status page. What is left, when it
expires, each claim (when, how far along, the note) and never a recipient's contact data;
the link and the chat words to hand it on again. Friends on the same link still see the
gift page, whoever came first."""

from __future__ import annotations

import re

import pytest
from helpers import browser, claim, say, share_in_chat

from storage.models import Order

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)

CONTACT = ("张小红", "138", "0013", "8000", "南山", "科技园", "1201", "李四", "139")


def test_the_giver_sees_what_is_left_when_it_expires_and_how_to_forward_it(bot):
    token = share_in_chat(bot, quantity="2", blessing="生日快乐！")
    page = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10)
    assert page.status_code == 200
    text = page.text
    assert "你送出的礼物" in text and "明前龙井礼盒 × 2" in text
    assert "还剩 2 份等好友领取" in text and "有效期" in text
    assert "你的祝福" in text and "生日快乐！" in text
    assert "还没有好友领取" in text
    assert f'<code class="share-link">{bot.url}/claim/{token}</code>' in text, "to forward again"
    assert f"领取 {token}" in text, "the words for claiming in chat"
    for words in ("不能自己领取", "好友送你一份礼物", "来自好友的祝福", "领取礼物</a>"):
        assert words not in text


def test_each_claim_shows_when_and_its_status_and_note_but_no_contact_data(bot):
    token = share_in_chat(bot, quantity="3")
    assert claim(bot, browser(bot, "o_f1"), token).url.endswith("/done")
    say(bot, "o_f2", f"领取 {token}", "李四", "13900139000", "广东省深圳市南山区科技园南区 8 栋 1201",
        "1", "确认")  # fmt: skip
    say(bot, "o_f2", "谢谢 收到啦，好喜欢")
    Order.update(status="shipped").where(Order.recipient == "o_f1").execute()

    text = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "第 1 位好友" in text and "第 2 位好友" in text and "第 3 位好友" not in text
    assert "已发货" in text and "待发货" in text
    assert "收到啦，好喜欢" in text
    assert "还剩 1 份" in text
    shown = re.sub(r"<[^>]*>", " ", text).replace(bot.url, "").replace(token, "")  # no markup,
    # links or token: random ports and tokens may hold "138" too
    assert not [c for c in CONTACT if c in shown], "the giver never sees a recipient's details"


def test_a_used_up_or_withdrawn_share_says_so_without_the_forwarding_box(bot):
    token = share_in_chat(bot)
    claim(bot, browser(bot, "o_f1"), token)
    text = browser(bot, "o_giver").get(f"{bot.url}/claim/{token}", timeout=10).text
    assert "1 份都已被好友领取" in text and "再转发给好友" not in text

    other = share_in_chat(bot, number="2")
    say(bot, "o_giver", "我送出的", "撤回 1")
    text = browser(bot, "o_giver").get(f"{bot.url}/claim/{other}", timeout=10).text
    assert "你已撤回这份礼物" in text and "再转发给好友" not in text


def test_the_drawn_gift_page_is_never_the_givers_and_the_givers_never_a_friends(bot):
    token = share_in_chat(bot, quantity="2")
    friend, giver, late = browser(bot, "o_f1"), browser(bot, "o_giver"), browser(bot, "o_f2")
    for session, expected, absent in (
        (friend, "领取礼物", "你送出的礼物"),
        (giver, "你送出的礼物", "领取礼物</a>"),
        (late, "领取礼物", "你送出的礼物"),
        (giver, "你送出的礼物", "领取礼物</a>"),
    ):
        bot.fake_wechat.set_user(
            {id(friend): "o_f1", id(giver): "o_giver", id(late): "o_f2"}[id(session)]
        )
        text = session.get(f"{bot.url}/claim/{token}", timeout=10).text
        assert expected in text and absent not in text
