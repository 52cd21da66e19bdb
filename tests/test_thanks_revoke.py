"""A gift's later life on the real server: the recipient's thank-you note (`谢谢 <text>` in
chat, the box on the confirmation page) and the giver's `撤回 <n>`, with its race against
the last claim on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from helpers import (
    BOTH_DATABASES,
    FORM,
    PAID,
    browser,
    claim,
    conversation,
    fill,
    first_slot,
    monday_morning,
    say,
    share_in_chat,
    xsrf,
)
from paying import refunds_made
from transcripts import check_transcript

from bot.gifting import shares
from storage.models import Gift, Order, Outbox, Share

NOTE = "路上小心，茶很好喝"
TEA = "tea-longjing"


@pytest.fixture(autouse=True)
def monday(bot) -> None:
    """Every test here runs on the pinned clock (see helpers.monday_morning)."""
    monday_morning(bot)


def ordered_in_chat(bot, friend: str, giver: str = "o_giver", quantity: str = "1") -> Order:
    """A share from `giver`, claimed by `friend` through the chat form; their order."""
    token = share_in_chat(bot, giver=giver, quantity=quantity)
    fill(bot, friend, token)
    assert "领取成功" in say(bot, friend, "确认")
    return Order.get(Order.share == Share.get(Share.token == token).id, Order.recipient == friend)


def thanks_queued() -> list[Outbox]:
    return list(Outbox.select().where(Outbox.key.startswith("notice:thanks:")))


def thanks_sent(bot, giver: str = "o_giver") -> list[str]:
    """The thank-you messages the giver received in chat."""
    return [
        m["text"]["content"]
        for m in bot.fake_wechat.messages
        if m["touser"] == giver and m["text"]["content"].startswith("💌")
    ]


def committed(gift_id: str = TEA) -> int:
    return Gift.get_by_id(gift_id).committed


# -- thanks in chat --------------------------------------------------------------------


def test_a_recipients_thanks_reaches_the_giver_once_and_shows_in_what_they_sent(bot):
    order = ordered_in_chat(bot, "o_friend")
    start = len(bot.wx.transcript)  # what follows the order
    reply = say(bot, "o_friend", f"谢谢 {NOTE}")
    assert reply == "💌 你的留言已送给送你「明前龙井礼盒」的好友。"
    bot.drain()
    assert thanks_sent(bot) == [f"💌 收到你送的「明前龙井礼盒」的好友给你留言：\n“{NOTE}”"]
    assert Order.get_by_id(order.id).thanks == NOTE

    listed = say(bot, "o_giver", "我送出的")
    assert f"1. 明前龙井礼盒 × 1：已全部领取\n   💌 好友留言：“{NOTE}”" in listed

    again = say(bot, "o_friend", "谢谢 再说一次谢谢")
    assert again == (
        f"你已经给送你「明前龙井礼盒」的好友留过言了：“{NOTE}”。每份礼物只能留言一次。"
    )
    assert Order.get_by_id(order.id).thanks == NOTE and len(thanks_queued()) == 1
    bot.drain()
    assert len(thanks_sent(bot)) == 1, "the giver reads the note once"
    check_transcript("thanks_in_chat", bot.wx.transcript[start:])


def test_each_new_order_can_be_thanked_and_the_note_is_what_follows_thanks(bot):
    """谢谢 X, 谢谢：X, 谢谢:X all send X; each note goes to the giver of the latest order."""
    sent = {}
    for n, typed in enumerate(["谢谢 茶收到了", "谢谢：月饼好吃", "谢谢:花很香"]):
        giver = f"o_giver_{n}"
        ordered_in_chat(bot, "o_friend", giver=giver)
        assert "你的留言已送给" in say(bot, "o_friend", typed)
        sent[giver] = typed[3:]
    bot.drain()
    for giver, note in sent.items():
        (message,) = thanks_sent(bot, giver)
        assert message.endswith(f"\n“{note}”")
    notes = {o.recipient_id + o.share.giver_id: o.thanks for o in Order.select()}
    assert notes == {f"o_friendo_giver_{n}": note for n, note in enumerate(sent.values())}


def test_a_note_that_is_no_note_is_refused_with_the_reason_and_nothing_is_kept(bot):
    order = ordered_in_chat(bot, "o_friend")
    most = bot.config.shares.thanks_max_length
    assert most == 100, "the default of [shares] thanks_max_length"
    for typed, reason in [
        ('谢谢 <a href="http://x.cn">点我领红包</a>', "留言里不能有链接或网页代码，请只写文字。"),
        ("谢谢 <script>alert(1)</script>", "留言里不能有链接或网页代码"),
        ("谢谢 快看 http://evil.example/x", "留言里不能有链接或网页代码"),
        ("谢谢 上 www.example.com 看看", "留言里不能有链接或网页代码"),
        ("谢谢 " + "好" * (most + 1), f"留言有 {most + 1} 个字，最多 {most} 个字，请短一点。"),
        ("谢谢", "谢谢后面写上想对送礼的好友说的话，例如「谢谢 收到啦，好喜欢！」"),
        ("谢谢：", "谢谢后面写上想对送礼的好友说的话"),
    ]:
        reply = say(bot, "o_friend", typed)
        assert reason in reply, (typed, reply)
        assert "已送给" not in reply
        assert Order.get_by_id(order.id).thanks == "" and thanks_queued() == [], typed
    bot.drain()
    assert thanks_sent(bot) == []

    assert "已送给" in say(bot, "o_friend", "谢谢 " + "好" * most)  # the limit itself is fine
    assert Order.get_by_id(order.id).thanks == "好" * most


def test_someone_with_no_order_cannot_thank_anyone(bot):
    share_in_chat(bot)
    for who in ("o_stranger", "o_giver"):
        reply = say(bot, who, "谢谢 你好")
        assert reply == "你还没有领取过礼物。领取好友送的礼物后，才能给送礼的好友留言。"
    assert thanks_queued() == []


# -- thanks on the confirmation page ---------------------------------------------------


def test_the_confirmation_page_box_sends_one_note_and_then_shows_it(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    done = claim(bot, phone, token)
    assert done.url.endswith(f"/claim/{token}/done")
    assert f'action="/claim/{token}/thanks"' in done.text and "<textarea" in done.text
    url = f"{bot.url}/claim/{token}/thanks"

    forged = phone.post(url, data={"thanks": NOTE}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403, "no XSRF token"

    too_long = "谢" * 101 + "<b>"
    bad = phone.post(url, data={"thanks": too_long, "_xsrf": xsrf(done)}, timeout=10)
    assert bad.status_code == 400
    assert "留言有 104 个字，最多 100 个字，请短一点。" in bad.text
    assert f">{'谢' * 101}&lt;b&gt;</textarea>" in bad.text, "what was typed is kept, escaped"
    assert 'aria-invalid="true"' in bad.text
    markup = phone.post(url, data={"thanks": "看 www.x.cn", "_xsrf": xsrf(done)}, timeout=10)
    assert markup.status_code == 400 and "留言里不能有链接或网页代码" in markup.text
    assert Order.get().thanks == "" and thanks_queued() == []

    good = phone.post(
        url, data={"thanks": f"  {NOTE}  ", "_xsrf": xsrf(done)}, allow_redirects=False, timeout=10
    )
    assert good.status_code == 303 and good.headers["Location"] == f"/claim/{token}/done"
    page = phone.get(f"{bot.url}/claim/{token}/done", timeout=10)
    assert "你给送礼的好友留了言" in page.text and f">{NOTE}</p>" in page.text
    assert "<textarea" not in page.text and "/thanks" not in page.text

    second = phone.post(url, data={"thanks": "再谢一次", "_xsrf": xsrf(done)}, timeout=10)
    assert second.status_code == 400 and "每份礼物只能留言一次" in second.text
    assert "<textarea" not in second.text
    assert Order.get().thanks == NOTE and len(thanks_queued()) == 1
    bot.drain()
    assert thanks_sent(bot) == [f"💌 收到你送的「明前龙井礼盒」的好友给你留言：\n“{NOTE}”"]


def test_the_thanks_box_answers_only_its_own_visitor(bot):
    token = share_in_chat(bot)
    phone = browser(bot, "o_friend")
    done = claim(bot, phone, token)
    token_field = xsrf(done)

    unknown = phone.post(
        f"{bot.url}/claim/{'x' * 22}/thanks", data={"thanks": NOTE, "_xsrf": token_field},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert unknown.status_code == 404

    anonymous = requests.Session()  # the XSRF cookie, but nobody logged in
    anonymous.cookies.set("_xsrf", phone.cookies["_xsrf"])
    nobody = anonymous.post(
        f"{bot.url}/claim/{token}/thanks", data={"thanks": NOTE, "_xsrf": token_field},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert nobody.status_code == 403

    other = browser(bot, "o_other")  # logged in, no order on this share
    other.get(f"{bot.url}/claim/{token}", timeout=10)
    other.cookies.set("_xsrf", phone.cookies["_xsrf"])
    no_order = other.post(
        f"{bot.url}/claim/{token}/thanks", data={"thanks": NOTE, "_xsrf": token_field},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert no_order.status_code == 303 and no_order.headers["Location"] == f"/claim/{token}"
    assert Order.get().thanks == "" and thanks_queued() == []


def test_one_note_per_order_whether_it_is_left_in_chat_or_on_the_page(bot):
    token = share_in_chat(bot, quantity="2")
    phone = browser(bot, "o_friend")
    first = claim(bot, phone, token)  # its box is still open in the browser
    assert "已送给" in say(bot, "o_friend", f"谢谢 {NOTE}")
    page = phone.get(f"{bot.url}/claim/{token}/done", timeout=10)
    assert f">{NOTE}</p>" in page.text and "<textarea" not in page.text
    late = phone.post(
        f"{bot.url}/claim/{token}/thanks", data={"thanks": "网页上再谢", "_xsrf": xsrf(first)},
        timeout=10,
    )  # fmt: skip
    assert late.status_code == 400 and "每份礼物只能留言一次" in late.text

    second = browser(bot, "o_second")
    done = claim(bot, second, token)
    posted = second.post(
        f"{bot.url}/claim/{token}/thanks", data={"thanks": "好喜欢", "_xsrf": xsrf(done)},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert posted.status_code == 303
    assert "留过言了：“好喜欢”" in say(bot, "o_second", "谢谢 聊天里再谢")
    assert sorted(o.thanks for o in Order.select()) == sorted([NOTE, "好喜欢"])
    assert len(thanks_queued()) == 2
    bot.drain()
    assert len(thanks_sent(bot)) == 2


# -- revoking --------------------------------------------------------------------------


def catalogue_stock(bot, gift_id: str = TEA) -> int:
    """The gift's stock free to share, as `catalogue list --format json` tells operators."""
    out = subprocess.run(
        [sys.executable, "-m", "bot", "catalogue", "list", "--format", "json",
         "--config", bot.tmp_config()],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return next(g["stock"] for g in json.loads(out.stdout) if g["id"] == gift_id)


def test_revoking_returns_the_unclaimed_units_and_withdraws_the_link(bot):
    stock = catalogue_stock(bot)
    token = share_in_chat(bot, quantity="3")
    friend = browser(bot, "o_friend")
    claim(bot, friend, token)
    order = Order.get()
    assert catalogue_stock(bot) == stock - 3
    listed = say(bot, "o_giver", "我送出的")
    assert "1. 明前龙井礼盒 × 3：1/3 份已领" in listed and "「撤回 1」" in listed

    reply = say(bot, "o_giver", "撤回 1")
    refund = "¥336.00 会原路退款给你。" if PAID else ""  # money is spoken of only when paid
    assert reply == (
        f"已撤回「明前龙井礼盒」：还没人领的 2 份已退回，{refund}这份礼物的链接不能再领取了。"
        "已领取的 1 份照常送达。"
    )
    assert catalogue_stock(bot) == stock - 1, "the 2 unclaimed units are back"
    assert refunds_made(bot) == ([("revoked", 2)] if PAID else []), "paid for: refunded"
    share = Share.get()
    assert share.revoked_at is not None and share.released and share.claimed == 1
    refund = "，其余的已退款 ¥336.00" if PAID else ""
    assert f"1. 明前龙井礼盒 × 3：已撤回（1/3 份已领{refund}）" in say(bot, "o_giver", "我送出的")

    late = browser(bot, "o_late")
    page = late.get(f"{bot.url}/claim/{token}", timeout=10)
    late.cookies.set("_xsrf", friend.cookies["_xsrf"])  # its page has no form to take it from
    assert page.status_code == 200
    assert (
        "送礼的好友已撤回这份礼物，不能再领取了。" in page.text
        and "<span>已撤回</span>" in page.text
    )
    assert "还剩" not in page.text and f"/claim/{token}/form" not in page.text
    assert late.get(f"{bot.url}/claim/{token}/form", timeout=10).status_code == 409
    posted = late.post(
        f"{bot.url}/claim/{token}/form",
        data=FORM | {"delivery": first_slot(bot), "_xsrf": late.cookies["_xsrf"]},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert posted.status_code == 409 and "已撤回" in posted.text
    assert say(bot, "o_late_chat", f"领取 {token}") == "送礼的好友已撤回这份礼物，不能再领取了。"
    assert conversation("o_late_chat").flow is None

    (kept,) = Order.select()
    assert (kept.order_no, kept.status, kept.recipient_id) == (order.order_no, "placed", "o_friend")
    friend_page = friend.get(f"{bot.url}/claim/{token}/done", timeout=10)
    assert friend_page.status_code == 200 and order.order_no in friend_page.text
    assert Share.get().claimed == 1 and catalogue_stock(bot) == stock - 1


def test_a_revoke_that_cannot_be_done_says_why_and_changes_nothing(bot):
    before = committed()
    used_up = share_in_chat(bot)  # will be claimed fully
    claim(bot, browser(bot, "o_friend"), used_up)
    share_in_chat(bot, quantity="2")  # will be withdrawn, then withdrawn again
    listed = say(bot, "o_giver", "我送出的")
    assert "1. 明前龙井礼盒 × 2：0/2 份已领" in listed
    assert "2. 明前龙井礼盒 × 1：已全部领取" in listed

    refusals = [
        ("撤回 9", "没有第 9 份：你送出的礼物编号是 1 到 2。回复「我送出的」查看"),
        ("撤回 0", "没有第 0 份"),
        ("撤回 abc", "请在「撤回」后面写上「我送出的」里的编号，例如「撤回 1」。"),
        ("撤回", "请在「撤回」后面写上「我送出的」里的编号"),
        ("撤回 2", "「明前龙井礼盒」已经全部被好友领取，没有可撤回的了。"),
    ]
    for typed, reason in refusals:
        reply = say(bot, "o_giver", typed)
        assert reason in reply, (typed, reply)
        assert Share.select().where(Share.revoked_at.is_null(False)).count() == 0
        assert committed() == before + 3

    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    assert committed() == before + 1
    assert say(bot, "o_giver", "撤回 1") == "「明前龙井礼盒」已经撤回过了，不用再撤回。"
    assert committed() == before + 1


def test_an_expired_share_is_not_revoked_and_its_units_are_returned_once(bot):
    before = committed()
    share_in_chat(bot, quantity="2")
    say(bot, "o_giver", "我送出的")
    bot.clock.offset += dt.timedelta(hours=73)
    assert say(bot, "o_giver", "撤回 1") == (
        "「明前龙井礼盒」已经过期，没人领的份数已自动退回，不用再撤回。"
    )
    assert Share.get().revoked_at is None
    bot.run(bot.services.db.write(shares.release_expired, bot.clock()))  # the sweep's work
    assert committed() == before
    assert refunds_made(bot) == ([("expired", 2)] if PAID else [])


def test_numbers_are_each_givers_own(bot):
    share_in_chat(bot, giver="o_giver")
    assert say(bot, "o_other", "撤回 1") == (
        "你还没有送出过礼物，没有可撤回的。回复「礼品」挑一份送给好友吧。"
    )
    share_in_chat(bot, giver="o_other", number="2")
    assert "已撤回「流心奶黄月饼」" in say(bot, "o_other", "撤回 1")
    theirs, mine = Share.get(Share.giver == "o_giver"), Share.get(Share.giver == "o_other")
    assert theirs.revoked_at is None and mine.revoked_at is not None


def test_withdrawn_units_no_longer_count_against_the_givers_limit(bot):
    most = bot.config.shares.max_open_units_per_giver
    assert most == 20, "the default of [shares] max_open_units_per_giver"
    share_in_chat(bot, quantity="10")
    share_in_chat(bot, quantity="10")
    refused = say(bot, "o_giver", "1", "送")
    assert "每人同时最多留 20 份未领的礼物" in refused and "「撤回 编号」" in refused, refused
    assert "已撤回" in say(bot, "o_giver", "我送出的", "撤回 2")
    share_in_chat(bot, quantity="10")  # the withdrawn ten may be shared again
    assert Share.select().where(Share.revoked_at.is_null()).count() == 2


def test_a_revoke_while_a_friend_fills_the_chat_form_ends_their_form(bot):
    before = committed()
    token = share_in_chat(bot)
    fill(bot, "o_friend", token)
    start = len(bot.wx.transcript)  # what follows the friend's summary
    assert "0/1 份已领" in say(bot, "o_giver", "我送出的")
    assert "已撤回" in say(bot, "o_giver", "撤回 1")
    reply = say(bot, "o_friend", "确认")
    assert reply == "送礼的好友已撤回这份礼物，不能再领取了。"
    assert conversation("o_friend").flow is None and Order.select().count() == 0
    assert committed() == before
    refund = "，其余的已退款 ¥168.00" if PAID else ""
    assert f"已撤回（0/1 份已领{refund}）" in say(bot, "o_giver", "我送出的")
    check_transcript("revoke_in_chat", bot.wx.transcript[start:], tokens=[token])


# -- a revoke racing the last claim ----------------------------------------------------

ROUNDS = 6


def ready_to_claim(bot, friend: str, token: str, by_web: bool):
    """The friend one step from their order: a filled web form or the chat summary; returns
    the last step, which answers (won, what the friend reads)."""
    if by_web:
        phone = browser(bot, friend)
        form = phone.get(f"{bot.url}/claim/{token}/form", timeout=10)
        data = FORM | {"delivery": first_slot(bot), "_xsrf": xsrf(form)}

        def submit():
            answer = phone.post(form.url, data=data, allow_redirects=False, timeout=30)
            return answer.status_code == 303, answer.text

        return submit
    assert "请核对收货信息" in fill(bot, friend, token)

    def confirm():
        answer = say(bot, friend, "确认")
        return "领取成功" in answer, answer

    return confirm


def race(bot, giver: str, last_step) -> tuple[str, tuple[bool, str]]:
    """`撤回 1` and the friend's last step, released together."""
    start = threading.Barrier(2)

    def revoke():
        start.wait(10)
        return say(bot, giver, "撤回 1")

    def claim_it():
        start.wait(10)
        return last_step()

    with ThreadPoolExecutor(2) as pool:
        revoking, claiming = pool.submit(revoke), pool.submit(claim_it)
        return revoking.result(), claiming.result()


@BOTH_DATABASES
def test_a_revoke_racing_the_last_claim_has_exactly_one_winner(bot):
    """Odd rounds claim through the web form, even ones through the chat's 确认; each round
    its own giver, so no giver's limits come into play."""
    gift = Gift.get_by_id(TEA)
    won = []
    for n in range(ROUNDS):
        giver, friend = f"o_giver_{n}", f"o_friend_{n}"
        token = share_in_chat(bot, giver=giver)
        say(bot, giver, "我送出的")
        last_step = ready_to_claim(bot, friend, token, by_web=bool(n % 2))
        revoked_reply, (claimed, claim_reply) = race(bot, giver, last_step)

        revoked = revoked_reply.startswith("已撤回「明前龙井礼盒」")
        assert revoked != claimed, (n, revoked_reply, claim_reply)
        share = Share.get(Share.token == token)
        orders = list(Order.select().where(Order.share == share.id))
        if claimed:
            assert "已经全部被好友领取" in revoked_reply
            assert share.revoked_at is None and share.claimed == 1 and len(orders) == 1
        else:
            assert "送礼的好友已撤回这份礼物" in claim_reply
            assert share.revoked_at is not None and share.claimed == 0 and orders == []
        won.append("claim" if claimed else "revoke")

    after = Gift.get_by_id(TEA)
    claims = won.count("claim")
    assert Order.select().count() == claims == sum(s.claimed for s in Share.select())
    assert after.stock == gift.stock
    assert after.committed == gift.committed + claims, f"units lost or doubled: {won}"
