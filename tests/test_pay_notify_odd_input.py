"""/pay/notify answers odd headers with a 4xx, never a 500 (review 2, F3): no signature needs
to hold for a header to reach the code that reads it."""

from __future__ import annotations

import base64

from paying import post_notify, unix


def test_a_5000_digit_timestamp_under_our_key_id_is_401_not_a_crash(pay_bot, log_lines):
    """`int()` of over 4,300 digits raised ValueError in the signature check: a 500."""
    bot, pay = pay_bot
    headers = {
        "Wechatpay-Timestamp": "9" * 5000,
        "Wechatpay-Nonce": "n0nce",
        "Wechatpay-Signature": base64.b64encode(b"\0" * 256).decode(),
        "Wechatpay-Serial": pay.standin.public_key_id,
        "Content-Type": "application/json",
    }
    answer = post_notify(bot, b"{}", headers)
    assert answer.status_code == 401 and "Traceback" not in answer.text
    headers["Wechatpay-Timestamp"] = str(int(unix(bot)))  # the same, at the right time
    assert post_notify(bot, b"{}", headers).status_code == 401, "a forgery all the same"
    assert not [line for line in log_lines() if line.get("event") == "request crashed"]
