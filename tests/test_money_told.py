"""Money told (issue 25): each refund WeChat Pay says succeeded tells the giver what it was for
and how much, in yuan, once, by the channel they have; reminders and draw results speak of a
refund only when money was paid; the pay page promises only what will reach its giver.
Over the real server, against the WeChat Pay stand-in and the fakes of WeChat and SMS."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import merge
from fakes.wechat_api import SUBSCRIBE_TEMPLATE
from fakes.wechatpay import FakeWeChatPay
from helpers import BOTH_DATABASES, browser, claim, say, share_in_chat
from paying import balance_holds, pay_for, pay_overrides, share_to_pay, unix

from bot.render import money
from storage.models import Outbox, Refund, Share, User


@pytest.fixture
def paid_bot(bot_factory, pay_keys, tmp_path):
    """(bot, pay) in wechatpay mode, with one-time subscriptions on."""
    holder: dict = {}
    fake = FakeWeChatPay(pay_keys, clock=lambda: unix(holder["bot"]), retry_scale=1e-4,
                         answer_timeout=2)  # fmt: skip
    with fake as pay:
        extra = {"wechat": {"subscribe_template_id": SUBSCRIBE_TEMPLATE}}
        holder["bot"] = bot = bot_factory(**merge(pay_overrides(tmp_path, pay_keys, pay), extra))
        yield bot, pay


def to_giver(bot) -> list[str]:
    return [m["text"]["content"] for m in bot.fake_wechat.messages
            if m["touser"] == "o_giver" and m["msgtype"] == "text"]  # fmt: skip


def settle(bot, pay) -> None:
    bot.drain()
    for number, refund in pay.standin.refunds.items():
        if refund.status == "PROCESSING":
            pay.standin.settle_refund(number, "SUCCESS")
    assert all(a.status == 204 for a in pay.deliver())
    bot.drain()


@BOTH_DATABASES
def test_a_refund_that_succeeds_tells_the_giver_what_for_and_how_much_once(paid_bot):
    bot, pay = paid_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    price = Share.get().unit_price
    revoked = say(bot, "o_giver", "我送出的", "撤回 1")
    assert f"{money(2 * price)} 会原路退款给你" in revoked
    settle(bot, pay)
    (told,) = [t for t in to_giver(bot) if "退款成功" in t]
    assert told == (
        f"💰 退款成功：你送出的「明前龙井礼盒」撤回时还没人领取的 2 份，{money(2 * price)} "
        "已原路退回你的微信支付。\n有疑问请回复「人工」。"
    )
    assert money(2 * price) == f"¥{2 * price // 100}.{2 * price % 100:02d}"  # ¥336.00, in yuan
    (refund,) = Refund.select()
    pay.standin.repeat_notification(pay.standin.notifications[-1].id)  # WeChat Pay says it again
    assert [a.status for a in pay.deliver()] == [204]
    bot.drain()
    assert [t for t in to_giver(bot) if "退款成功" in t] == [told], "told once"
    row = Outbox.get(Outbox.key == f"notice:refund:{refund.out_refund_no}")
    assert (row.status, row.sent_by) == ("sent", "customer-service message")
    balance_holds()


def test_a_giver_out_of_the_window_hears_of_the_refund_by_sms_on_the_mobile_they_ordered_with(
    paid_bot,
):
    bot, pay = paid_bot
    token = share_to_pay(bot)
    pay_for(bot, pay, token)
    others = pay_for_someone_elses(bot, pay)
    claim(bot, browser(bot, "o_giver"), others)  # now we know the giver's mobile
    User.update(last_message_at=bot.clock() - dt.timedelta(hours=49)).where(
        User.openid == "o_giver"
    ).execute()
    bot.clock.offset += dt.timedelta(hours=73)  # nobody claimed it: expired, refunded
    bot.run(bot.services.sweep_once())
    settle(bot, pay)
    (texted,) = [m for m in bot.sms.received if m["template"] == "refund"]
    price = Share.get(Share.token == token).unit_price
    assert texted["phone"] == "+8613800138000"
    assert texted["params"] == {"gift": "明前龙井礼盒", "amount": money(price)}
    assert money(price) in texted["text"]


def pay_for_someone_elses(bot, pay) -> str:
    """Another giver's paid share, for o_giver to claim (so we know o_giver's mobile)."""
    token = share_to_pay(bot, giver="o_other")
    pay_for(bot, pay, token, giver="o_other")
    return token


@BOTH_DATABASES
def test_reminders_speak_of_a_refund_only_when_money_was_paid(paid_bot, bot_factory):
    bot, pay = paid_bot
    token = share_to_pay(bot, quantity="2")
    pay_for(bot, pay, token)
    share = Share.get(Share.token == token)
    bot.clock.offset += share.expires_at - bot.clock() - dt.timedelta(hours=1)
    say(bot, "o_giver", "你好")  # in the window, to read it in chat
    bot.run(bot.services.sweep_once())
    bot.drain()
    (reminded,) = [t for t in to_giver(bot) if t.startswith("⏰")]
    assert f"过期后未领的会原路退款 {money(2 * share.unit_price)} 给你" in reminded

    free = bot_factory()
    share_in_chat(free, quantity="2")
    kept = Share.get(Share.token != token)
    free.clock.offset += kept.expires_at - free.clock() - dt.timedelta(hours=1)
    say(free, "o_giver", "你好")
    free.run(free.services.sweep_once())
    free.drain()
    (reminded,) = [t for t in to_giver(free) if t.startswith("⏰")]
    assert "过期后未领的会退回" in reminded and "¥" not in reminded and "退款" not in reminded


def test_the_pay_page_offers_the_giver_a_subscription_and_says_when_it_went_through(paid_bot):
    bot, pay = paid_bot
    token = share_to_pay(bot)
    giver = browser(bot, "o_giver")
    page = giver.get(f"{bot.url}/pay/{token}", timeout=10).text
    assert "微信通知我一次" in page and f"{bot.fake_wechat.url}/mp/subscribemsg?" in page
    assert giver.get(f"{bot.url}/pay/{token}/state", timeout=10).json() == {
        "state": "unpaid", "paid": False,
    }  # fmt: skip
    assert (
        browser(bot, "o_friend").get(f"{bot.url}/pay/{token}/state", timeout=10).status_code == 404
    )
    pay_for(bot, pay, token)
    assert giver.get(f"{bot.url}/pay/{token}/state", timeout=10).json()["paid"] is True
    paid = giver.get(f"{bot.url}/pay/{token}", timeout=10).text
    assert "付款成功" in paid and "礼物卡已发到公众号对话里" in paid
