"""The giver's share form (S11): how many, and a blessing (祝福语).

Usage::

    form = ShareForm(FormContext(config, now, subject={"gift": gift}))
    form.field("quantity").parse("2", form.ctx)      # 2, or Invalid("quantity_range", ...)
"""

from __future__ import annotations

import unicodedata

from bot.forms.base import Field, Form, FormContext, Invalid, small_number
from bot.forms.safety import refuse_markup

SKIP_WORD = "跳过"


def max_quantity(ctx: FormContext) -> int:
    """At most: a share's limit, the gift's stock, and what the giver may still hold."""
    return min(
        ctx.config.shares.max_quantity,
        ctx.subject["gift"].available,
        ctx.subject.get("allowance", ctx.config.shares.max_quantity),
    )


def parse_quantity(text: str, ctx: FormContext) -> int:
    text = unicodedata.normalize("NFKC", text).strip().removesuffix("份").strip()
    number = small_number(text)
    if number is None:
        raise Invalid("quantity_invalid", text=text[:20], most=max_quantity(ctx))
    return check_quantity(number, ctx)


def check_quantity(value: int, ctx: FormContext) -> int:
    most = max_quantity(ctx)
    if most < 1:
        raise Invalid("out_of_stock", gift=ctx.subject["gift"].name, left=0)
    if not 1 <= value <= most:
        by_stock = most == ctx.subject["gift"].available < ctx.config.shares.max_quantity
        by_limit = not by_stock and most == ctx.subject.get("allowance")
        raise Invalid(
            "quantity_range", value=value, most=most, by_stock=by_stock, by_limit=by_limit
        )
    return value


def parse_blessing(text: str, ctx: FormContext) -> str:
    text = text.strip()
    if text == SKIP_WORD:
        return ""
    return check_blessing(text, ctx)


def check_blessing(value: str, ctx: FormContext) -> str:
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n" for ch in value):
        raise Invalid("blessing_invalid")
    refuse_markup(value, "祝福语")
    most = ctx.config.shares.blessing_max_length
    if len(value) > most:
        raise Invalid("blessing_too_long", length=len(value), most=most)
    return value


class ShareForm(Form):
    name = "share"
    fields = (
        Field(
            "quantity",
            "份数",
            parse=parse_quantity,
            check=check_quantity,
            example="1",
            aliases=("数量", "几份"),
        ),
        Field(
            "blessing",
            "祝福语",
            parse=parse_blessing,
            check=check_blessing,
            show=lambda value, ctx: value or "（不写祝福语）",
            example="生日快乐！",
            aliases=("祝福",),
        ),
    )
