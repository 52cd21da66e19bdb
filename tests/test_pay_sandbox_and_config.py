"""[payments] in the config and in the /dev sandbox: keys checked at start-up (a broken one
stops the bot naming it, half of WeChat Pay's public key too; none of it: platform
certificates); the sandbox plays the paid story against the built-in stand-in of
WeChat Pay, whose signed notification goes through the real /pay/notify."""

from __future__ import annotations

import re

import pytest
from conftest import make_config, make_raw_config
from fakes.wechatpay import eventually
from helpers import xsrf
from paying import pay_overrides, share_to_pay

from bot.config import ConfigError, parse
from bot.money.merchant import Merchant
from storage.models import Share


def test_the_sandbox_pays_through_the_built_in_stand_in(bot_factory):
    bot = bot_factory(server={"sandbox": True}, payments={"mode": "wechatpay"})
    token = share_to_pay(bot, quantity="2")
    session = bot.session()
    page = session.get(f"{bot.url}/dev/as", params={"openid": "o_giver", "next": f"/pay/{token}"})
    assert page.status_code == 200 and "模拟支付成功" in page.text
    done = session.post(f"{bot.url}/pay/{token}/simulate", data={"_xsrf": xsrf(page)})
    assert done.status_code == 200
    assert eventually(lambda: Share.get(Share.token == token).payment == "paid")
    bot.drain()
    inbox = session.get(f"{bot.url}/dev/inbox").json()["items"]
    paid = [item for item in inbox if "付款成功" in item["text"]]
    assert len(paid) == 1 and f"/claim/{token}" in paid[0]["text"]
    assert "已经付过款了" in session.get(f"{bot.url}/pay/{token}").text


def test_free_mode_has_no_pay_pages_and_shares_as_before(bot_factory):
    bot = bot_factory(payments={"mode": "free"})  # in a paid run too: free mode stays free
    assert bot.config.payments.mode == "free"
    for text in ("1", "送", "1", "跳过"):
        bot.wx.text("o_giver", text)
    card = bot.wx.text("o_giver", "确认")["article"]["Url"]
    token = card.rsplit("/", 1)[1]
    assert card.endswith(f"/claim/{token}") and Share.get().payment == ""
    assert bot.session().get(f"{bot.url}/pay/{token}").status_code == 404


@pytest.mark.parametrize(
    "wechatpay, key",
    [
        ({"api_v3_key": "short"}, "payments.wechatpay.api_v3_key"),
        ({"mchid": "merchant"}, "payments.wechatpay.mchid"),
        ({"private_key_path": "/nonexistent.pem"}, "payments.wechatpay.private_key_path"),
        ({"public_key_path": "PRIVATE"}, "payments.wechatpay.public_key_path"),
        ({"public_key_id": "12345"}, "payments.wechatpay.public_key_id"),
        ({"public_key_id": ""}, "payments.wechatpay.public_key_id"),  # half of the public key
        ({"public_key_path": ""}, "payments.wechatpay.public_key_path"),  # the other half
        ({"cert_serial_no": "not hex!"}, "payments.wechatpay.cert_serial_no"),
        ({"retry_seconds": 0}, "payments.wechatpay.retry_seconds"),
    ],
)
def test_a_broken_wechatpay_config_names_its_key(tmp_path, pay_keys, wechatpay, key):
    class Gateway:  # pay_overrides reads these two of the stand-in
        standin = type("S", (), {"public_key_id": "PUB_KEY_ID_0112" + "0" * 24})
        gateway = "https://api.mch.weixin.qq.com"

    overrides = pay_overrides(tmp_path, pay_keys, Gateway, **wechatpay)
    if wechatpay.get("public_key_path") == "PRIVATE":  # a private key where the public one goes
        overrides["payments"]["wechatpay"]["public_key_path"] = str(tmp_path / "apiclient_key.pem")
    with pytest.raises(ConfigError) as refused:
        make_config(f"sqlite:///{tmp_path}/x.db", "http://127.0.0.1:8080", **overrides)
    assert refused.value.key == key, refused.value


def test_without_the_public_key_the_merchant_verifies_with_platform_certificates(
    tmp_path, pay_keys
):
    class Gateway:
        standin = type("S", (), {"public_key_id": None})  # a merchant of certificates
        gateway = "https://api.mch.weixin.qq.com"

    overrides = pay_overrides(tmp_path, pay_keys, Gateway)
    config = make_config(f"sqlite:///{tmp_path}/x.db", "http://127.0.0.1:8080", **overrides)

    w = config.payments.wechatpay
    assert (w.public_key_path, w.public_key_id) == ("", "")
    merchant = Merchant.from_config(config)
    assert (merchant.public_key, merchant.public_key_id) == (None, "")


def test_the_mode_and_the_hold_are_checked(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    with pytest.raises(ConfigError) as refused:
        make_config(url, "http://127.0.0.1:8080", payments={"mode": "alipay"})
    assert refused.value.key == "payments.mode"
    with pytest.raises(ConfigError) as refused:
        make_config(url, "http://127.0.0.1:8080", payments={"hold_minutes": 0})
    assert refused.value.key == "payments.hold_minutes"
    with pytest.raises(ConfigError) as refused:  # no stand-in outside the sandbox: keys needed
        make_config(url, "http://127.0.0.1:8080", payments={"mode": "wechatpay"})
    assert re.match(r"payments\.wechatpay\.", refused.value.key)


def test_the_apiv3_key_may_come_from_the_environment(tmp_path, pay_keys):
    class Gateway:
        standin = type("S", (), {"public_key_id": "PUB_KEY_ID_0112" + "0" * 24})
        gateway = "https://api.mch.weixin.qq.com"

    raw = make_raw_config(
        f"sqlite:///{tmp_path}/x.db", "http://127.0.0.1:8080",
        **pay_overrides(tmp_path, pay_keys, Gateway, api_v3_key=""),
    )  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        parse(raw, environ={})
    assert refused.value.key == "payments.wechatpay.api_v3_key"
    key = "k" * 32
    config = parse(raw, environ={"GIFTBOT_WECHATPAY_API_V3_KEY": key})
    assert config.payments.wechatpay.api_v3_key == key
