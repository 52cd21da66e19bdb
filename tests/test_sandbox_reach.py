"""The sandbox plays what reaches people (issue 25): WeChat's one-time subscription page and
its messages (in the follower's chat, or 服务通知), the paid share's card, and a refund end to
end — the built-in WeChat Pay settles it by itself and its signed REFUND.SUCCESS reaches
/pay/notify — over HTTP, as the /dev page's script reads it."""

from __future__ import annotations

import re

from fakes.wechatpay import eventually
from helpers import xsrf
from paying import share_to_pay
from sandboxing import dev_send, dev_session

from bot.outgoing import subscriptions
from storage.models import Refund, Share, SubscriptionGrant


def inbox(bot, session) -> list[dict]:
    return session.get(f"{bot.url}/dev/inbox?after=0", timeout=10).json()["items"]


def as_user(bot, openid: str, path: str):
    session = bot.session()
    page = session.get(f"{bot.url}/dev/as", params={"openid": openid, "next": path}, timeout=10)
    return session, page


def test_the_sandbox_plays_wechats_subscription_page_and_shows_its_message(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    s, headers = dev_session(bot)
    for text in ("1", "抽奖", "1", "跳过", "跳过"):
        dev_send(bot, s, headers, openid="dev-giver", kind="text", text=text)
    token = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="确认")["url"]
    token = token.rsplit("/", 1)[1]
    friend, page = as_user(bot, "dev-friend-1", f"/claim/{token}")
    joined = friend.post(f"{bot.url}/claim/{token}/join", data={"_xsrf": xsrf(page)}, timeout=10)
    link = re.search(r'class="btn btn-big subscribe" href="([^"]+)"', joined.text).group(1)
    link = link.replace("&amp;", "&")
    assert link.startswith(f"{bot.url}/dev/subscribemsg?action=get_confirm&")
    assert f"template_id={subscriptions.SANDBOX_TEMPLATE}" in link
    asked = friend.get(link.split("#")[0], timeout=10)
    assert "申请向你发送一条订阅消息" in asked.text and "dev-friend-1" in asked.text
    allow = re.search(r'href="([^"]+)">允许', asked.text).group(1).replace("&amp;", "&")
    back = friend.get(allow, timeout=10)
    assert back.url == f"{bot.url}/claim/{token}" and "已订阅" in back.text
    assert SubscriptionGrant.get().openid == "dev-friend-1"

    share = Share.get()
    bot.clock.offset += share.draw_at - bot.clock()
    bot.run(bot.services.sweep_once())
    bot.drain()
    (told,) = [i for i in inbox(bot, s) if i["channel"] == "subscription"]
    assert told["to"] == "dev-friend-1" and told["title"] == "中奖" and "恭喜" in told["text"]
    assert told["follower"] is False, "never wrote to the account: 服务通知, not the chat"
    assert bot.fake_wechat.calls == [], "a laptop's sandbox asks nothing of WeChat"


def test_the_sandbox_refuses_a_subscription_link_wechat_would_refuse(bot_factory):
    bot = bot_factory(server={"sandbox": True})
    session, _ = as_user(bot, "dev-friend-1", "/dev")
    good = {"action": "get_confirm", "appid": bot.config.wechat.app_id, "scene": "1",
            "template_id": subscriptions.SANDBOX_TEMPLATE, "reserved": "abc",
            "redirect_url": f"{bot.url}/subscribed"}  # fmt: skip
    assert session.get(f"{bot.url}/dev/subscribemsg", params=good, timeout=10).status_code == 200
    for wrong in ({"appid": "wx_other"}, {"scene": "10001"}, {"template_id": "x"},
                  {"redirect_url": "https://evil.example/subscribed"}, {"reserved": "a!"}):  # fmt: skip
        answer = session.get(f"{bot.url}/dev/subscribemsg", params=good | wrong, timeout=10)
        assert answer.status_code == 400, wrong


def test_the_sandbox_shows_the_paid_card_and_a_refund_end_to_end(bot_factory):
    bot = bot_factory(server={"sandbox": True}, payments={"mode": "wechatpay"})
    s, headers = dev_session(bot)
    token = share_to_pay(bot, giver="dev-giver", quantity="2")
    session, page = as_user(bot, "dev-giver", f"/pay/{token}")
    paying = session.post(f"{bot.url}/pay/{token}/simulate", data={"_xsrf": xsrf(page)})
    assert paying.url == f"{bot.url}/pay/{token}?paying=1"
    # It waits for WeChat Pay's notification, or has it already (it can beat the redirect).
    assert "正在等微信支付确认付款" in paying.text or "已经付过款了" in paying.text
    assert eventually(lambda: session.get(f"{bot.url}/pay/{token}/state").json()["paid"])
    bot.drain()
    (card,) = [i for i in inbox(bot, s) if i.get("card")]
    assert card["to"] == "dev-giver" and card["card"]["url"] == f"{bot.url}/claim/{token}"
    assert "明前龙井礼盒" in card["card"]["title"]

    revoked = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="撤回 1")["content"]
    assert "会原路退款给你" in revoked
    bot.drain()  # the refund goes to the stand-in: processing, then settled by itself
    assert Refund.get().status == "processing"
    assert eventually(lambda: Refund.get().status == "success", timeout=10)
    bot.drain()
    (told,) = [i for i in inbox(bot, s) if "退款成功" in i["text"]]
    assert told["to"] == "dev-giver" and "¥" in told["text"] and told["channel"] == "wechat"
