"""Pages that carry a person's data are `Cache-Control: private, no-store` (review 2, F11):
no shared cache keeps them, no browser keeps them on disk or shows them again from history.
Set once, by every page handler (handlers/web/base.py); a page meant for anyone says so."""

from __future__ import annotations

import pytest
import requests
from helpers import (
    BOTH_DATABASES,
    DESKTOP_UA,
    FORM,
    browser,
    first_slot,
    monday_morning,
    share_in_chat,
    xsrf,
)
from paying import share_to_pay

PRIVATE = {"private", "no-store"}


def private(page: requests.Response) -> bool:
    said = {part.strip() for part in page.headers.get("Cache-Control", "").split(",")}
    return said >= PRIVATE


@BOTH_DATABASES
def test_every_page_with_personal_data_is_private_and_never_stored(bot):
    monday_morning(bot)
    token = share_in_chat(bot)
    url = f"{bot.url}/claim/{token}"
    pages = {"the giver's status page": browser(bot, "o_giver").get(url, timeout=10)}
    friend = browser(bot, "o_friend")
    pages["the gift page, as its visitor"] = friend.get(url, timeout=10)
    form = pages["the order form"] = friend.get(f"{url}/form", timeout=10)
    typed = FORM | {"address": "火星", "delivery": first_slot(bot), "_xsrf": xsrf(form)}
    pages["the form with typed values"] = friend.post(f"{url}/form", data=typed, timeout=10)
    assert pages["the form with typed values"].status_code == 400
    typed["address"] = FORM["address"]
    pages["the confirmation"] = friend.post(f"{url}/form", data=typed, timeout=10)
    pages["the confirmation again"] = friend.get(f"{url}/done", timeout=10)
    assert "138 0013 8000" in pages["the confirmation again"].text, "name, phone, address"

    outside = requests.Session()
    outside.headers["User-Agent"] = DESKTOP_UA
    pages["outside WeChat"] = outside.get(url, timeout=10)
    data = {"phone": "13912345678", "_xsrf": outside.cookies.get("_xsrf")}
    pages["the mobile page"] = outside.post(f"{url}/mobile", data=data, timeout=10)
    data = {"code": "000000", "_xsrf": outside.cookies.get("_xsrf")}
    pages["the code page"] = outside.post(f"{url}/mobile/verify", data=data, timeout=10)
    pages["an error page"] = friend.get(f"{bot.url}/claim/{token}x/done", timeout=10)

    for name, page in pages.items():
        assert private(page), (name, page.status_code, page.headers.get("Cache-Control"))
    assert not private(requests.get(f"{bot.url}/claim/{token}/qr.svg", timeout=10))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_pay_page_is_private_and_never_stored(pay_bot):
    bot, _ = pay_bot
    token = share_to_pay(bot)
    page = browser(bot, "o_giver").get(f"{bot.url}/pay/{token}", timeout=10)
    assert page.status_code == 200 and private(page), page.headers.get("Cache-Control")
