"""Chat transcripts kept as fixtures: what the bot says on the main paths, for people to read.

Usage in a test::

    from transcripts import check_transcript
    check_transcript("claim_in_chat", bot.wx.transcript, tokens=[token])

The run's transcript (`WeChatSim.transcript`) is normalised (claim tokens →
`<token>`, order numbers → `<order_no>`, dates → `<date>`, ports → `<port>`)
and compared with `tests/transcripts/<name>.txt`. A wording change in a
template fails the test with a unified diff of what the user now reads.

Regenerate the files after a deliberate wording change, then read the diff::

    GIFTBOT_UPDATE_TRANSCRIPTS=1 .venv/bin/pytest tests/test_chat_order.py tests/test_chat_share.py
    git diff tests/transcripts/

The tests pin the bot's clock (a Monday, 10:00 in Shanghai: see
`helpers.monday_morning`), so weekdays and slot windows are stable and
stay readable; only the calendar dates are replaced.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from helpers import PAID

FOLDER = Path(__file__).resolve().parent / "transcripts"
UPDATE = os.environ.get("GIFTBOT_UPDATE_TRANSCRIPTS") == "1"

_RULES = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:<port>"),
    (re.compile(r"/claim/[A-Za-z0-9_-]+"), "/claim/<token>"),
    (re.compile(r"G\d{6}-[2-9A-Z]{5}"), "<order_no>"),
    (re.compile(r"(?:\d{4}年)?\d{1,2}月\d{1,2}日"), "<date>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "<yyyy-mm-dd>"),
]


def normalise(text: str, tokens: Iterable[str] = ()) -> str:
    """Replace what changes from run to run with placeholders a reader understands."""
    for token in tokens:
        text = text.replace(token, "<token>")
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text


def render(transcript: list[tuple[str, str]], tokens: Iterable[str] = ()) -> str:
    """One block per message: who, then what they said (indented when it runs over lines)."""
    blocks = []
    for who, said in transcript:
        lines = normalise(said, tokens).split("\n")
        blocks.append(f"{who}: {lines[0]}" + "".join(f"\n    {line}" for line in lines[1:]))
    return "\n".join(blocks) + "\n"


def check_transcript(name: str, transcript: list[tuple[str, str]], tokens: Iterable[str] = ()):
    """Compare this run's transcript with tests/transcripts/<name>.txt (or write it). A paid
    run (GIFTBOT_TEST_PAYMENTS=wechatpay) reads <name>.paid.txt where the words differ there
    (money is spoken of only when paid), else the same file."""
    path = FOLDER / f"{name}.txt"
    paid = FOLDER / f"{name}.paid.txt"
    actual = render(transcript, tokens)
    if UPDATE:
        FOLDER.mkdir(exist_ok=True)
        if not PAID:
            path.write_text(actual, encoding="utf-8")
        elif path.exists() and path.read_text(encoding="utf-8") == actual:
            paid.unlink(missing_ok=True)
        else:
            paid.write_text(actual, encoding="utf-8")
        return
    if PAID and paid.exists():
        path = paid
    if not path.exists():
        pytest.fail(f"{path} is missing: run with GIFTBOT_UPDATE_TRANSCRIPTS=1 to write it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"tests/transcripts/{name}.txt",
            tofile="this run",
        )
        pytest.fail(
            "the chat reads differently now (GIFTBOT_UPDATE_TRANSCRIPTS=1 to accept):\n"
            + "".join(diff),
            pytrace=False,
        )
