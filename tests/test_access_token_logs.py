"""The log carries no part of WeChat's access_token (review 2, F11): it used to show the first
six characters whenever one was fetched or refused."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fakes.wechat_api import FakeWeChat

import storage.db
from bot.outgoing.wechat_api import WeChatApi
from storage.models import ApiToken
from storage.runner import Runner


@pytest.fixture
def api(tmp_path):
    database = storage.db.connect("sqlite:///" + str(tmp_path / "t.db"))
    storage.db.migrate()
    with FakeWeChat() as fake:
        yield fake, WeChatApi(fake.config(), Runner(2))
    database.close()


def test_fetching_renewing_and_a_refused_token_log_none_of_it(api, caplog):
    fake, client = api
    caplog.set_level(logging.DEBUG, logger="gift_bot")
    tokens = [asyncio.run(client.access_token())]
    fake.expire_token()  # the next call is refused with 42001, then the token renewed
    asyncio.run(client.send_text("o_alice", "hi"))
    fake.fail_next("/cgi-bin/message/custom/send", 40001)  # refused, renewed by force
    asyncio.run(client.send_text("o_alice", "hi"))
    tokens.append(ApiToken.get().value)
    assert len(set(tokens)) == 2 and fake.token_fetches >= 3
    ours = [r for r in caplog.records if r.name.startswith("gift_bot")]
    assert any("access_token" in r.getMessage() for r in ours), "the lines are there"
    for record in ours:
        for token in tokens:
            for start in range(len(token) - 3):  # no four characters of it in a row
                assert token[start : start + 4] not in record.getMessage(), record.getMessage()
