"""The /dev sandbox over HTTP, as its page's script talks to it (the bot made with
`bot_factory(server={"sandbox": True})`).

Usage in a test module::

    from sandboxing import dev_send, dev_session

    s, headers = dev_session(bot)          # the /dev page opened: its XSRF token as a header
    reply = dev_send(bot, s, headers, openid="dev-giver", kind="text", text="1")
    reply["content"]; reply["url"]         # the bot's reply as the page shows it (200 asserted)
"""

from __future__ import annotations

import requests


def dev_session(bot) -> tuple[requests.Session, dict]:
    s = requests.Session()
    s.get(f"{bot.url}/dev", timeout=10)
    return s, {"X-XSRFToken": s.cookies["_xsrf"]}


def dev_send(bot, session, headers, **message) -> dict:
    """A message typed (or a button, a scan…) on the /dev page; the bot's reply."""
    r = session.post(f"{bot.url}/dev/send", json=message, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["reply"]
