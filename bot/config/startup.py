"""What start-up checks beyond the file's own keys: what the config points at must be there.

Usage::

    check_images(config.gifts)        # ConfigError("gifts[0].image", "no file static/gifts/tea.png")
    check_database(config.database)   # ConfigError("database.url", "cannot open …: …")

A gift's `/static/` picture that is missing would start a bot whose every page shows a broken
picture; a database that cannot be reached or migrated would fail later with a traceback.
Both stop start-up instead, in one line naming the key (the command line's exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee

from bot.config.build import ConfigError
from storage import db as storage

STATIC = Path(__file__).resolve().parents[2] / "static"  # what /static/ serves


def check_images(gifts, static: Path = STATIC) -> None:
    """Every gift picture under /static/ is a file there (an https URL is the web's to serve)."""
    for i, gift in enumerate(gifts):
        if not gift.image.startswith("/static/"):
            continue
        relative = gift.image.removeprefix("/static/").split("?")[0]
        path = (static / relative).resolve()
        if not path.is_relative_to(static.resolve()):
            raise ConfigError(f"gifts[{i}].image", f"{gift.image} is outside /static/")
        if not path.is_file():
            shown = Path("static") / relative
            raise ConfigError(f"gifts[{i}].image", f"no file {shown} for {gift.image}")


def check_database(database) -> None:
    """The database answers and its schema can be brought up to date; the connection is let go
    afterwards (`serve --workers` forks after this, and each process opens its own)."""
    try:
        bound = storage.connect(database.url)
        try:
            storage.migrate()
        finally:
            close = getattr(bound, "close_all", None) or bound.close
            close()
    except (peewee.DatabaseError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            "database.url", f"cannot open {shown_url(database.url)}: {reason}"
        ) from None


def shown_url(url: str) -> str:
    """The URL without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))
