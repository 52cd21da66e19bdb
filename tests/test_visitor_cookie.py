"""The visitor's cookie, checked once a minute at most per Cookie header (handlers/web/base.py):
what is trusted is what a full check said, for its own secret only; a refused cookie is never
remembered, and a remembered one is checked again once its minute is over."""

from __future__ import annotations

from unittest import mock

import pytest
import tornado.httputil
import tornado.web

from handlers.web import base

SECRET, OTHER = "s" * 43, "t" * 43


class Connection:
    def set_close_callback(self, callback):
        pass


def visitor(cookie: str, secret: str = SECRET) -> str | None:
    app = tornado.web.Application(cookie_secret=secret)
    request = tornado.httputil.HTTPServerRequest(
        headers=tornado.httputil.HTTPHeaders({"Cookie": cookie, "Host": "gift.example"}),
        connection=Connection(),
        start_line=tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.1"),
    )  # fmt: skip
    return base.BaseHandler(app, request).get_current_user()


def cookie(openid: str, secret: str = SECRET, **kwargs) -> str:
    value = tornado.web.create_signed_value(secret, base.OPENID_COOKIE, openid, **kwargs)
    return f"{base.OPENID_COOKIE}={value.decode()}"


@pytest.fixture(autouse=True)
def forget():
    base._visitors.clear()
    yield
    base._visitors.clear()


def test_a_checked_cookie_is_trusted_for_its_minute_then_checked_again():
    good = cookie("o_visitor")
    with mock.patch.object(base.time, "monotonic", return_value=1000.0):
        assert visitor(good) == "o_visitor"
    with (
        mock.patch.object(base.BaseHandler, "_visitor", side_effect=AssertionError("checked")),
        mock.patch.object(base.time, "monotonic", return_value=1000.0 + base.VISITORS_SECONDS - 1),
    ):
        assert visitor(good) == "o_visitor", "within its minute: not parsed nor checked again"
    with (
        mock.patch.object(base.BaseHandler, "_visitor", return_value=None) as check,
        mock.patch.object(base.time, "monotonic", return_value=1000.0 + base.VISITORS_SECONDS),
    ):
        assert visitor(good) is None, "after it: checked again (and now refused)"
        assert check.called


def test_a_cookie_is_trusted_only_under_the_secret_that_checked_it():
    good = cookie("o_visitor")
    assert visitor(good) == "o_visitor"
    assert visitor(good, secret=OTHER) is None


def test_a_forged_or_stale_cookie_is_refused_every_time():
    forged = cookie("o_visitor", secret=OTHER)
    stale = cookie("tel:+8613800138000", clock=lambda: 0)  # signed in 1970: long expired
    for _ in range(2):
        assert visitor(forged) is None
        assert visitor(stale) is None
    assert base._visitors == {}
