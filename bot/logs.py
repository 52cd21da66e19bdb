"""Logging: one line per event, JSON for production, readable colours on a developer's terminal.

Usage::

    setup(json_lines=not config.server.sandbox)
    logging.getLogger("gift_bot.x").info("message handled", extra={"kind": "text", "ms": 1.2})
    hashed("o6_bmjrPTlm6_2sgVt7hMZOPfL2M")                 # "30cfe5391ab1": a person, unnamed
    key_shown("draw:lost:3:o6_bmjrPTlm6_2sgVt7hMZOPfL2M")  # "draw:lost:3:#30cfe5391ab1"

Modules log through the standard library with `extra=` fields; structlog's
formatter renders them. Never log an OpenID (hash it) or a full phone number.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys

import structlog


def setup(json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def formatter(json_lines: bool) -> logging.Formatter:
    """How a line looks: `event` is the message, `extra=` fields become keys beside it."""
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def hashed(openid: str) -> str:
    """A stable, non-reversible tag for logs: never log an OpenID itself."""
    return hashlib.sha256(openid.encode()).hexdigest()[:12]


# What an idempotency key is made of besides people: its words (draw, lost, recipient), row
# ids, and order and payment numbers (G261126-7KQ3X, T…, R…).
_PLAIN_PART = re.compile(r"[a-z]+|\d+|[A-Z][A-Z0-9]*\d[A-Z0-9-]*")


def key_shown(key: str, *openids: str | None) -> str:
    """An outbox key as a log line shows it: words, ids and order numbers as they are, any other
    part (an OpenID in `draw:lost:3:<openid>`, `remind:visit:3:<openid>`) as `#` + its hash.
    `openids`: people the row is known to concern, hashed wherever they appear."""
    key = scrubbed(key, *openids)
    return ":".join(
        p if _PLAIN_PART.fullmatch(p) or p.startswith("#") else "#" + hashed(p)
        for p in key.split(":")
    )


def scrubbed(text: str, *openids: str | None) -> str:
    """`text` (an error, a key) with each of `openids` in it replaced by `#` + its hash."""
    for openid in openids:
        if openid:
            text = text.replace(openid, "#" + hashed(openid))
    return text
