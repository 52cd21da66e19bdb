"""PostgreSQL's kept-back statements (storage/pipeline.py) keep a transaction's meaning: what was
kept back commits with it or rolls back with it, a failure still comes from the statement that
failed, a savepoint rolled back undoes only its own work; and a message opens with one round
trip (storage/hot.py's open_message) that still tells a retry and a replay apart."""

from __future__ import annotations

import peewee
import pytest
from storing import migrated

from bot import users
from bot.gifting import shares
from storage import db as storage
from storage import hot, share_reads
from storage.models import InboundMessage, PushNonce, Share, User, utcnow

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@pytest.fixture
def config(db_url):
    with migrated(db_url) as config:
        yield config


@pytest.fixture
def sent(config):
    """Every round trip to the server from now on, as the SQL text that went."""
    database = storage.db.obj
    texts: list[str] = []
    original = database.cursor

    class Cursor:
        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, sql, *args):
            texts.append(sql.decode() if isinstance(sql, bytes) else sql)
            return self._cursor.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._cursor, name)

    database.cursor = lambda *a, **k: Cursor(original(*a, **k))
    yield texts
    database.cursor = original


def user(openid: str) -> None:
    storage.db.obj.defer(
        'INSERT INTO "user" (openid, first_seen, last_seen, subscribed) VALUES (%s, %s, %s, %s)',
        (openid, utcnow(), utcnow(), False),
    )


def test_begin_and_kept_back_writes_go_with_the_next_statement_and_the_commit(sent):
    with storage.write_transaction():
        user("o_kept")
        assert sent == [], "BEGIN and the insert wait"
        assert User.select().where(User.openid == "o_kept").count() == 1  # sees its own write
        user("o_kept_2")
    assert len(sent) == 2, sent
    assert sent[0].startswith("BEGIN; INSERT") and sent[1].endswith("; COMMIT")
    assert User.select().where(User.openid.startswith("o_kept")).count() == 2


def test_an_empty_transaction_sends_nothing(sent):
    with storage.write_transaction():
        pass
    assert sent == []


def test_kept_back_writes_roll_back_with_their_transaction(sent):
    with pytest.raises(RuntimeError), storage.write_transaction():
        user("o_gone")
        raise RuntimeError
    assert sent == [], "nothing was sent, so nothing had to be undone"
    assert not User.select().where(User.openid == "o_gone").exists()


def test_a_failing_statement_fails_where_it_is_sent_and_a_savepoint_undoes_only_itself(sent):
    with storage.write_transaction():
        user("o_twice")
        with pytest.raises(peewee.IntegrityError), storage.db.atomic():
            storage.db.execute_sql(
                'INSERT INTO "user" (openid, first_seen, last_seen, subscribed) '
                "VALUES (%s, %s, %s, %s)",
                ("o_twice", utcnow(), utcnow(), False),
            )
        user("o_after")
    assert User.select().where(User.openid.in_(["o_twice", "o_after"])).count() == 2


def test_a_savepoint_rolled_back_before_anything_went_is_forgotten(sent):
    with storage.write_transaction():
        user("o_before")
        with pytest.raises(RuntimeError), storage.db.atomic():
            user("o_undone")
            raise RuntimeError
        user("o_kept_on")
    assert len(sent) == 1 and "o_undone" not in sent[0] and "ROLLBACK" not in sent[0]
    names = {u.openid for u in User.select().where(User.openid.startswith("o_"))}
    assert names == {"o_before", "o_kept_on"}


def test_a_message_opens_with_one_round_trip_and_knows_retries_and_replays(sent):
    now = utcnow()
    guard = ("k" * 64, "b" * 64, 1790000000)
    with storage.write_transaction():
        opened = hot.open_message("msg:1", "o_open", now, guard)
        assert len(sent) == 1
        assert (opened.replayed, opened.first, opened.conversation) == (False, True, None)
        assert hot.catalogue_version() >= 0 and len(sent) == 1, "the version came with it"
        hot.keep_reply("msg:1", {"type": "text", "content": "hi"})
    assert len(sent) == 2
    with storage.write_transaction():
        again = hot.open_message("msg:1", "o_open", now, guard)  # WeChat's retry: same body
    assert (again.replayed, again.first, again.stored) == (False, False, {"type": "text", "content": "hi"})  # fmt: skip
    with pytest.raises(RuntimeError), storage.write_transaction():
        replay = hot.open_message("msg:2", "o_open", now, (guard[0], "c" * 64, guard[2]))
        assert replay.replayed
        raise RuntimeError  # as chat.handle does (pushes.Replayed): nothing of it is kept
    assert not InboundMessage.select().where(InboundMessage.key == "msg:2").exists()
    assert PushNonce.select().count() == 1


def test_a_claim_step_opens_with_its_share_read_once_and_only_in_its_own_transaction(config, sent):
    """The conversation's context names the share a claim's form is about: the opening statement
    reads it, and the transaction's first read of that share takes it (one round trip fewer
    at every step). Only once: a later read asks the server, and sees the transaction's own
    writes; another token, or another transaction, asks too."""
    now = utcnow()
    users.touch("o_giver", now, message=True)
    share = shares.create(config, "o_giver", config.gifts[0].id, 2, "", now)
    context = {"token": share.token}
    with storage.write_transaction():
        hot.insert_conversation("o_friend", {
            "flow": "order", "step": "name", "answers": {}, "context": context, "editing": False,
            "hints": {}, "paused": False, "version": 1, "expires_at": now, "updated_at": now,
        })  # fmt: skip
    sent.clear()
    with storage.write_transaction():
        hot.open_message("msg:claim-1", "o_friend", now, None)
        assert len(sent) == 1
        assert share_reads.share_by_token("wrong" + share.token[5:]) is None  # asked: not it
        assert len(sent) == 2
    with storage.write_transaction():
        hot.open_message("msg:claim-2", "o_friend", now, None)
        opening = len(sent)
        first = share_reads.share_by_token(share.token)
        assert (first.id, first.claimed) == (share.id, 0)
        assert len(sent) == opening, "it came with the opening statement"
        Share.update(claimed=1).where(Share.id == share.id).execute()
        assert share_reads.share_by_token(share.token).claimed == 1, "asked again: its own write"
    sent.clear()
    with storage.write_transaction():
        assert share_reads.share_by_token(share.token).claimed == 1 and len(sent) == 1


def test_a_giving_step_opens_with_the_givers_allowance_and_making_the_share_asks_again(
    config, sent
):
    """In a giving dialogue the opening statement reads the giver's limits (units held, shares
    this hour) for the step's first look at them; making the share, after the giver's lock,
    asks the server again, as does a second look or another transaction."""
    now = utcnow()
    users.touch("o_giver", now, message=True)
    shares.create(config, "o_giver", config.gifts[0].id, 2, "", now)
    with storage.write_transaction():
        hot.insert_conversation("o_giver", {
            "flow": "share", "step": "quantity", "answers": {}, "context": {}, "editing": False,
            "hints": {}, "paused": False, "version": 1, "expires_at": now, "updated_at": now,
        })  # fmt: skip
    since, per_hour = shares.allowance_window(config, now)
    asked = ("o_giver", now, since, per_hour)
    with storage.write_transaction():
        hot.open_message("msg:give-1", "o_giver", now, None, (("draw", "share"), since, per_hour))
        opening = len(sent)
        held, made = hot.giver_allowance(*asked, opened=True)
        assert (held, len(made), len(sent)) == (2, 1, opening), "it came with the opening"
        assert hot.giver_allowance(*asked, opened=True) == (held, made) and len(sent) > opening
    with storage.write_transaction():
        hot.open_message("msg:give-2", "o_giver", now, None, (("draw", "share"), since, per_hour))
        opening = len(sent)
        assert hot.giver_allowance(*asked) == (held, made) and len(sent) > opening, "not opened"
    with storage.write_transaction():
        hot.open_message("msg:give-3", "o_giver", now, None, (("draw",), since, per_hour))
        opening = len(sent)
        assert hot.giver_allowance(*asked, opened=True) == (held, made) and len(sent) > opening
