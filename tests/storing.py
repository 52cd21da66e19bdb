"""The storage layer without a server: the example config's database connected, migrated and
its catalogue synced, for tests that call bot/ and storage/ in this very process.

Usage in a test module::

    from storing import migrated

    @pytest.fixture
    def config(db_url):                    # conftest.py's: SQLite, or PostgreSQL by parameter
        with migrated(db_url) as config:   # the example config on db_url; the models bound
            yield config                   # and the connection closed after the test
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from conftest import make_config

from bot.config import Config
from bot.gifting import catalogue
from storage import db as storage


@contextlib.contextmanager
def migrated(db_url: str) -> Iterator[Config]:
    config = make_config(db_url, "http://127.0.0.1:8080")
    storage.connect(db_url)
    storage.migrate()
    catalogue.sync(config.gifts)
    try:
        yield config
    finally:
        storage.db.close()
