"""docs/share_life.md, drawn from the table (bot/gifting/life/table.py); a test checks the
file is current.

Usage::

    print(document(), end="")
"""

from __future__ import annotations

from bot.gifting.life.table import OVER, RULES, STATE_COLUMNS, Move, State


def document() -> str:
    """docs/share_life.md: the states and moves above, drawn from RULES (a test checks the
    file is current)."""
    diagram = []
    for move, rule in RULES.items():
        if move is Move.RETURN_UNIT:  # every state to itself: said below the table
            continue
        diagram += [f"    {a or '[*]'} --> {b}: {move}" for a, b in rule.edges]
    diagram += [f"    {s} --> [*]" for s in sorted(OVER)]
    rows = []
    for move, rule in RULES.items():
        sources = ", ".join(sorted(rule.sources)) or "—"
        targets = ", ".join(sorted(rule.targets))
        refused = ", ".join(f"{s} → `{c}`" for s, c in sorted(rule.refused.items())) or "—"
        rows.append(f"| `{move}` | {sources} | {targets} | {rule.guard} | {rule.effects} | "
                    f"{refused} |")  # fmt: skip
    states = "\n".join(f"| `{s.value}` | {s.name} |" for s in State)
    return f"""# A share's life

Generated from the code by `bot.gifting.life.drawing.document()` (regenerate with
`.venv/bin/python -c "from bot.gifting.life.drawing import document; print(document(), end='')" > docs/share_life.md`);
`tests/test_share_life.py` fails when this file is out of date.

A share's state is read from its columns and the clock (`life.state_of`), never stored
twice; every move below is a function of `bot/gifting/life/moves.py`, the only code that writes a
share's state columns ({", ".join(f"`{c}`" for c in sorted(STATE_COLUMNS))}). A move the
table does not allow is refused with the code in its last column.

| state | |
| --- | --- |
{states}

| move | from | to | guard | effects | refused (state → code) |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

`{Move.RETURN_UNIT}` (a cancelled order) may happen in any state: the share keeps its claim
on record, and the unit goes back to the gift's stock.

```mermaid
stateDiagram-v2
{chr(10).join(diagram)}
```
"""
