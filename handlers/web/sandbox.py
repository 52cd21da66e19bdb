"""Who a page acts as in the /dev sandbox, where one browser plays several WeChat users.

Usage (handlers/web/base.py does both for every page when `[server] sandbox` is on)::

    acting_field(user)       # <input type="hidden" name="_acting_as" …>, beside every form's xsrf
    stale_page(handler)      # after the xsrf check: True when it refused (and said so)

A page in the sandbox says which user it acts as (templates/pages/base.html) and is
rendered with that user in every form it holds. The sandbox's identity is one cookie for
the whole browser, so choosing another user in another tab changes it under an open page;
a form posted from a page opened as someone else is then refused with both names and a
way to go on as either, instead of acting as whoever the cookie names now (the giver's pay
page answering "只有送出这份礼物的人才能为它付款" because a claim was opened as 好友 1).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from markupsafe import Markup

FIELD = "_acting_as"


def acting_field(user: str | None) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, user or "")


def stale_page(handler) -> bool:
    """True when the form came from a page opened as another user; the answer is then sent:
    the page (a person's form) or JSON `{"error"}` (pay.js's order request)."""
    acted = handler.get_body_argument(FIELD, None)
    now = handler.current_user or ""
    if acted is None or acted == now:
        return False
    back = _same_site_path(handler.request.headers.get("Referer", "")) or "/"
    switch = {
        u: f"/dev/as?{urlencode({'openid': u, 'next': back, 'switch': 1})}"
        for u in (acted, now)
        if u
    }
    handler.set_status(409)
    text = handler.services.renderer.text("sandbox/switched.txt", was=acted, now=now)
    if "text/html" not in handler.request.headers.get("Accept", ""):
        handler.finish({"error": text})
        return True
    handler.render_page("pages/dev_stale.html", status=409, was=acted, now=now, switch=switch)
    return True


def _same_site_path(url: str) -> str:
    parts = urlsplit(url)
    return (
        parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.path.startswith("/")
        else ""
    )
