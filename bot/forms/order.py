"""The recipient's order form (S14): the gift taken instead (only after 换, when [shares] swap
allows one), variant (when the gift has them), name, mobile, address, delivery time. Declared
once; the web page and the chat both run it.

Usage::

    form = OrderForm(FormContext(config, now, subject=orders.form_subject(share)))  # gifting
    values, errors = form.parse_all(request_texts)        # the web form
    form.next_field(answers)                              # the chat's next question
    answers = OrderAnswers.from_answers(values, tz)       # the typed value an order is made of
    Order.create(**answers.to_columns(), ...)
    OrderAnswers.from_order(order, tz).delivery.label     # "12月1日 周二 14:00-18:00"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.codes import Code
from bot.forms.address import check_address, parse_address, show_address
from bot.forms.base import Field, Form, FormContext, Invalid
from bot.forms.delivery import Slot, check_slot, parse_slot, show_slot
from bot.forms.numbers import small_number
from bot.forms.person import check_phone, parse_name, parse_phone, show_phone


def parse_variant(text: str, ctx: FormContext) -> str:
    """A variant by its number in the list or by its name."""
    variants = ctx.subject["gift"].variants
    text = text.strip()
    if not text:
        raise Invalid(Code.VARIANT_EMPTY, variants=variants)
    number = small_number(text)
    if number is not None and 1 <= number <= len(variants):
        return variants[number - 1]
    if text in variants:
        return text
    raise Invalid(Code.VARIANT_UNKNOWN, text=text, variants=variants)


def parse_address_near(text: str, ctx: FormContext) -> dict:
    """An address; after a location message, the typed rest may lean on the place it named."""
    hint = ctx.subject.get("address_hint")
    try:
        return parse_address(text)
    except Invalid as exc:
        if hint and exc.code in ("address_no_region", "address_no_district", "address_too_short"):
            return parse_address(f"{hint} {text}")
        raise


KEEP = ("0", "不换", "原礼物", "原来的")  # answers to the swap step that keep the gift given


def parse_swap(text: str, ctx: FormContext) -> str:
    """The gift taken instead, by its number in the list (its id); "" keeps the gift given."""
    offered = ctx.subject.get("choices") or []
    text = text.strip()
    if text in KEEP:
        return ""
    number = small_number(text)
    if number is not None and 1 <= number <= len(offered):
        return offered[number - 1].id
    named = next((g.id for g in offered if g.name == text), None)
    if named is None:
        raise Invalid(Code.SWAP_UNKNOWN, text=text[:20], count=len(offered))
    return named


def check_swap(value: str, ctx: FormContext) -> str:
    """Still on offer (in stock, the price allowed), or the gift given."""
    offered = [g.id for g in ctx.subject.get("choices") or []]
    if value and value not in offered:
        raise Invalid(Code.SWAP_GONE)
    return value


def show_swap(value: str, ctx: FormContext) -> str:
    return f"{ctx.subject['gift'].name}（{'换的' if value else '原来的礼物'}）"


def check_variant(value: str, ctx: FormContext) -> str:
    if value not in ctx.subject["gift"].variants:
        raise Invalid(Code.VARIANT_UNKNOWN, text=value, variants=ctx.subject["gift"].variants)
    return value


class OrderForm(Form):
    name = "order"
    fields = (
        Field(
            "swap",
            "礼物",
            parse=parse_swap,
            check=check_swap,
            show=show_swap,
            required=lambda ctx: bool(ctx.subject.get("swapping")),
            example="1",
            aliases=("换", "换礼物"),
            reshapes=True,
        ),
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
            check=lambda value, ctx: check_phone(value),
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


@dataclass(frozen=True)
class OrderAnswers:
    """One order's answers as a typed value: what the form collects, what an Order keeps."""

    name: str
    phone: str  # E.164
    address: dict[str, str]  # region, detail (and, when just typed, its parts)
    delivery: Slot
    variant: str = ""

    @classmethod
    def from_answers(cls, answers: dict[str, Any], timezone: str) -> OrderAnswers:
        return cls(
            name=answers["name"],
            phone=answers["phone"],
            address=answers["address"],
            delivery=Slot.from_key(answers["delivery"], timezone),
            variant=answers.get("variant") or "",
        )

    @classmethod
    def from_order(cls, order: Any, timezone: str) -> OrderAnswers:
        return cls(
            name=order.name,
            phone=order.phone,
            address={"region": order.region, "detail": order.address_detail},
            delivery=Slot(order.delivery_date, order.delivery_slot, timezone),
            variant=order.variant,
        )

    def to_columns(self) -> dict[str, Any]:
        """The Order columns these answers fill."""
        return {
            "variant": self.variant,
            "name": self.name,
            "phone": self.phone,
            "region": self.address["region"],
            "address_detail": self.address["detail"],
            "delivery_date": self.delivery.date,
            "delivery_slot": self.delivery.window,
        }

    def as_answers(self) -> dict[str, Any]:
        """The form's answers (what `OrderForm.summary` shows)."""
        return {
            "variant": self.variant,
            "name": self.name,
            "phone": self.phone,
            "address": self.address,
            "delivery": self.delivery.key,
        }
