"""The chat's words and moves, each declared once (bot/words.py, bot/chat/moves.py), on their own:
how typed text is compared, which word means what, and that the moves table covers every
move the words declare."""

from __future__ import annotations

import pytest

from bot.chat.moves import MOVES
from bot.words import (
    COMMAND_WORDS,
    MENU_KEYS,
    SPOKEN,
    Command,
    Move,
    Word,
    after,
    claim_token,
    command_of,
    menu_command,
    move_of,
    normalize,
)


@pytest.mark.parametrize(
    ("typed", "compared"),
    [
        ("  礼品 ", "礼品"),
        ("礼品\n", "礼品"),
        ("修改　　地址", "修改 地址"),  # full-width spaces folded and joined
        ("ＧＩＦＴ１", "GIFT1"),  # full-width letters and digits folded
        ("", ""),
        (None, ""),
    ],
)
def test_typed_text_is_compared_folded_and_trimmed(typed, compared):
    assert normalize(typed) == compared


def test_every_command_word_and_menu_key_finds_its_command():
    for command, words in COMMAND_WORDS.items():
        for word in words:
            assert command_of(f" {word} ") is command
        assert menu_command(command.value) is command
    assert command_of("礼品吧") is None and menu_command("UNKNOWN") is None
    assert set(MENU_KEYS) <= set(Command)


@pytest.mark.parametrize(
    ("typed", "move"),
    [
        ("确认", (Move.CONFIRM, "")),
        (" 返回 ", (Move.BACK, "")),
        ("修改 地址", (Move.EDIT, "地址")),
        ("修改地址", (Move.EDIT, "地址")),
        ("修改　２", (Move.EDIT, "2")),
        ("取消", (Move.CANCEL, "")),
        ("继续", (Move.RESUME, "")),
        ("更多", (Move.MORE, "")),
        ("确认一下", None),
        ("张小红", None),
    ],
)
def test_a_move_is_read_with_its_argument(typed, move):
    assert move_of(typed) == move


def test_the_moves_table_has_a_rule_for_every_move_and_draws_the_edges():
    assert set(MOVES) == set(Move)
    steps, summary = ["name", "phone", "address"], "summary"
    assert MOVES[Move.CONFIRM].edges(steps, summary) == [("summary", "[*]")]
    assert MOVES[Move.BACK].edges(steps, summary) == [
        ("phone", "name"), ("address", "phone"), ("summary", "address"),
    ]  # fmt: skip
    assert MOVES[Move.EDIT].edges(steps, summary) == [("summary", s) for s in steps]
    assert {m for m, rule in MOVES.items() if rule.paused} == {Move.CANCEL, Move.RESUME}


def test_words_with_an_argument_keep_it_as_typed():
    assert claim_token("领取 AbC123_-x") == "AbC123_-x"
    assert claim_token("领取") is None and claim_token("我领取了") is None
    assert after(Word.THANKS, "谢谢 路上小心，茶很好喝") == "路上小心，茶很好喝"
    assert after(Word.REVOKE, "撤回２") == "２", "the argument as typed; its reader folds it"
    assert after(Word.THANKS, "不用谢谢") is None


def test_templates_can_say_every_word():
    for command, words in COMMAND_WORDS.items():
        assert getattr(SPOKEN, command.name) == words[0]
    for word in (*Move, *Word):
        assert getattr(SPOKEN, word.name) == word.value
