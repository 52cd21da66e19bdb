"""The giver's share form (S11): how many, and a blessing (祝福语).

Usage::

    subject = {"gift": gift, "allowance": shares.allowance(config, giver, now)}
    share_refusal(subject)                           # None, or why this cannot be shared now
    form = ShareForm(FormContext(config, now, subject=subject))
    form.field("quantity").parse("2", form.ctx)      # 2, or Invalid(Code.QUANTITY_RANGE, ...)

Whether a gift can be shared (retired, out of stock, the giver's limits) is decided here,
before the first question and again for the quantity typed; the share's transaction
(`bot.gifting.shares.create`) has the last word when stock runs out in between.
"""

from __future__ import annotations

import unicodedata

from bot.codes import Code
from bot.forms.base import Field, Form, FormContext, Invalid
from bot.forms.numbers import small_number
from bot.forms.order import check_variant, parse_variant
from bot.forms.safety import free_text
from bot.words import Word, normalize


def share_refusal(subject: dict, giver_limits: bool = True) -> Invalid | None:
    """Why the subject's gift cannot be shared now by its giver; None when it can."""
    gift = subject["gift"]
    if not gift.active:
        return Invalid(Code.GIFT_RETIRED)
    if gift.available < 1:
        return Invalid(Code.OUT_OF_STOCK, gift=gift.name, left=0)
    return subject["allowance"].refusal() if giver_limits else None


def max_quantity(ctx: FormContext) -> int:
    """At most: a share's limit, the gift's stock, and what the giver may still hold."""
    return min(
        ctx.config.shares.max_quantity,
        ctx.subject["gift"].available,
        ctx.subject["allowance"].units,
    )


def parse_quantity(text: str, ctx: FormContext) -> int:
    text = unicodedata.normalize("NFKC", text).strip().removesuffix("份").strip()
    number = small_number(text)
    if number is None:
        raise Invalid(Code.QUANTITY_INVALID, text=text[:20], most=max_quantity(ctx))
    return check_quantity(number, ctx)


def check_quantity(value: int, ctx: FormContext) -> int:
    if refusal := share_refusal(ctx.subject):
        raise refusal
    most = max_quantity(ctx)
    if not 1 <= value <= most:
        by_stock = most == ctx.subject["gift"].available < ctx.config.shares.max_quantity
        by_limit = not by_stock and most == ctx.subject["allowance"].units
        raise Invalid(
            Code.QUANTITY_RANGE, value=value, most=most, by_stock=by_stock, by_limit=by_limit
        )
    return value


def parse_blessing(text: str, ctx: FormContext) -> str:
    text = text.strip()
    if normalize(text) == Word.SKIP:
        return ""
    return check_blessing(text, ctx)


def check_blessing(value: str, ctx: FormContext) -> str:
    free_text(value, "祝福语", lines=True)
    most = ctx.config.shares.blessing_max_length
    if len(value) > most:
        raise Invalid(Code.BLESSING_TOO_LONG, length=len(value), most=most)
    return value


def blessing_field(example: str) -> Field:
    """The blessing step, as every way of giving asks it (`跳过` leaves it empty). A picture
    or a voice sent here becomes the greeting too (bot/chat/engine.py keeps its media_id;
    bot/gifting/media.py fetches it once the share is made); a voice's words answer it."""
    return Field(
        "blessing",
        "祝福语",
        parse=parse_blessing,
        check=check_blessing,
        show=lambda value, ctx: value or "（不写祝福语）",
        example=example,
        aliases=("祝福",),
        takes_media=True,
    )


def parse_theme(text: str, ctx: FormContext) -> str:
    """A [[themes]] entry by its number or name; `跳过` keeps the default look ("")."""
    text = text.strip()
    if normalize(text) == Word.SKIP:
        return ""
    themes = ctx.config.themes
    number = small_number(text)
    if number is not None and 1 <= number <= len(themes):
        return themes[number - 1].id
    named = next((t.id for t in themes if text in (t.name, t.id)), None)
    if named is None:
        raise Invalid(Code.THEME_UNKNOWN, text=text[:20], count=len(themes))
    return named


def check_theme(value: str, ctx: FormContext) -> str:
    if value and value not in {t.id for t in ctx.config.themes}:
        raise Invalid(Code.THEME_UNKNOWN, text=value, count=len(ctx.config.themes))
    return value


def show_theme(value: str, ctx: FormContext) -> str:
    return next((t.name for t in ctx.config.themes if t.id == value), "默认")


def theme_field() -> Field:
    """The look of the share's page and card: asked only when [[themes]] offers some."""
    return Field(
        "theme",
        "卡片样式",
        parse=parse_theme,
        check=check_theme,
        show=show_theme,
        required=lambda ctx: bool(ctx.config.themes),
        example="1",
        aliases=("样式", "主题", "卡片"),
    )


def surprise_with_variants(ctx: FormContext) -> bool:
    """A surprise's variant is the giver's to choose: the recipient's choice would name it."""
    return ctx.subject.get("kind") == "surprise" and bool(ctx.subject["gift"].variants)


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
            "wrapped_variant",
            "款式",
            parse=parse_variant,  # as the order form reads a variant
            check=check_variant,
            required=surprise_with_variants,
            example="1",
            aliases=("款", "样式", "颜色"),
        ),
        blessing_field(example="生日快乐！"),
        theme_field(),
    )
