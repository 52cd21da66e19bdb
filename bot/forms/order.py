"""The recipient's order form (S14): variant (when the gift has them), name, mobile, address,
delivery time. Declared once; the web page and the chat both run it.

Usage::

    form = OrderForm(FormContext(config, now, subject={"gift": gift}))
    values, errors = form.parse_all(request_texts)        # the web form
    form.next_field(answers)                              # the chat's next question
"""

from __future__ import annotations

from bot.forms.address import check_address, parse_address, show_address
from bot.forms.base import Field, Form, FormContext, Invalid, small_number
from bot.forms.delivery import check_slot, parse_slot, show_slot
from bot.forms.person import parse_name, parse_phone, show_phone


def parse_variant(text: str, ctx: FormContext) -> str:
    """A variant by its number in the list or by its name."""
    variants = ctx.subject["gift"].variants
    text = text.strip()
    if not text:
        raise Invalid("variant_empty", variants=variants)
    number = small_number(text)
    if number is not None and 1 <= number <= len(variants):
        return variants[number - 1]
    if text in variants:
        return text
    raise Invalid("variant_unknown", text=text, variants=variants)


def parse_address_near(text: str, ctx: FormContext) -> dict:
    """An address; after a location message, the typed rest may lean on the place it named."""
    hint = ctx.subject.get("address_hint")
    try:
        return parse_address(text)
    except Invalid as exc:
        if hint and exc.code in ("address_no_region", "address_no_district", "address_too_short"):
            return parse_address(f"{hint} {text}")
        raise


def check_variant(value: str, ctx: FormContext) -> str:
    if value not in ctx.subject["gift"].variants:
        raise Invalid("variant_unknown", text=value, variants=ctx.subject["gift"].variants)
    return value


class OrderForm(Form):
    name = "order"
    fields = (
        Field(
            "variant",
            "款式",
            parse=parse_variant,
            check=check_variant,
            required=lambda ctx: bool(ctx.subject["gift"].variants),
            example="1",
            aliases=("款", "样式", "颜色"),
        ),
        Field(
            "name",
            "姓名",
            parse=lambda text, ctx: parse_name(text),
            example="张小红",
            aliases=("名字", "收货人", "收件人"),
        ),
        Field(
            "phone",
            "手机",
            parse=lambda text, ctx: parse_phone(text),
            check=lambda value, ctx: parse_phone(value),
            show=lambda value, ctx: show_phone(value),
            example="13800138000",
            aliases=("电话", "手机号", "号码", "手机号码"),
        ),
        Field(
            "address",
            "地址",
            parse=parse_address_near,
            check=lambda value, ctx: check_address(value),
            show=lambda value, ctx: show_address(value),
            example="广东省深圳市南山区科技园南区 8 栋 1201",
            takes_location=True,
            aliases=("收货地址", "地点"),
        ),
        Field(
            "delivery",
            "收货时间",
            parse=lambda text, ctx: parse_slot(text, ctx.config.delivery, ctx.now),
            check=lambda value, ctx: check_slot(value, ctx.config.delivery, ctx.now),
            show=lambda value, ctx: show_slot(value, ctx.config.delivery),
            example="1（时段编号），或 明天下午",
            aliases=("时间", "送达时间", "配送时间", "时段"),
            lists_choices=True,
        ),
    )
