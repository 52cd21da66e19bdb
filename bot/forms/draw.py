"""The giver's draw form (抽奖): how many winners, a blessing, and when to draw.

Usage::

    form = DrawForm(FormContext(config, now, subject={"gift": gift, "allowance": ...}))
    form.field("draw_at").parse("明天20:00", form.ctx)     # "2026-12-03T12:00:00" (naive UTC)
    form.field("draw_at").parse("跳过", form.ctx)          # [shares] draw_hours from now

The winners are the share's units (what the gift's stock and the giver's limits allow, as
送's quantity); the blessing is 送's. The draw time is a time in people's words (2小时后,
明天20:00, 12月5日 晚上8点) between a few minutes and DRAW_MAX_DAYS from now.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from bot.codes import Code
from bot.forms.base import Field, Form, FormContext, Invalid
from bot.forms.share import blessing_field, check_quantity, parse_quantity, theme_field
from bot.forms.when import day_label, read_when
from bot.words import Word, normalize

DRAW_MIN_MINUTES = 5  # the soonest a draw may be, so friends have a moment to join
DRAW_MAX_DAYS = 7
_AFTER = re.compile(r"^(\d+(?:\.\d+)?)\s*(分钟|小时|个小时|天)[以之]?后$")
_UNITS = {"分钟": 60, "小时": 3600, "个小时": 3600, "天": 86400}


def default_draw_at(ctx: FormContext) -> dt.datetime:
    return ctx.now + dt.timedelta(hours=ctx.config.shares.draw_hours)


def _stored(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat()


def draw_time(value: str) -> dt.datetime:
    """A stored draw time as a naive UTC datetime (how the share keeps it)."""
    return dt.datetime.fromisoformat(value)


def parse_draw_at(text: str, ctx: FormContext) -> str:
    typed = normalize(text)
    if typed == Word.SKIP:
        return _stored(default_draw_at(ctx))
    at = _read(typed, ctx)
    if at is None:
        raise Invalid(Code.DRAW_AT_INVALID, text=typed[:20])
    return check_draw_at(_stored(at), ctx, soonest=DRAW_MIN_MINUTES)


def _read(typed: str, ctx: FormContext) -> dt.datetime | None:
    if match := _AFTER.match(typed.replace(" ", "")):
        return ctx.now + dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    zone = ZoneInfo(ctx.config.delivery.timezone)
    local = ctx.now.astimezone(zone)
    day, hours, _ = read_when(typed, local.date())
    if hours is None:
        return None
    at = dt.datetime.combine(day or local.date(), hours[0], tzinfo=zone)
    if day is None and at <= local:
        at += dt.timedelta(days=1)  # 20:00 said at 21:00 means tomorrow's
    return at


def check_draw_at(value: str, ctx: FormContext, soonest: float = 0) -> str:
    at = draw_time(value).replace(tzinfo=dt.UTC)
    earliest = ctx.now + dt.timedelta(minutes=soonest)
    latest = ctx.now + dt.timedelta(days=DRAW_MAX_DAYS)
    if not earliest <= at <= latest:
        raise Invalid(
            Code.DRAW_AT_RANGE, earliest=show_draw_at(_stored(earliest), ctx),
            latest=show_draw_at(_stored(latest), ctx),
        )  # fmt: skip
    return value


def show_draw_at(value: str, ctx: FormContext) -> str:
    local = (
        draw_time(value).replace(tzinfo=dt.UTC).astimezone(ZoneInfo(ctx.config.delivery.timezone))
    )
    return f"{day_label(local.date())} {local:%H:%M}"


class DrawForm(Form):
    name = "draw"
    fields = (
        Field(
            "winners",
            "中奖人数",
            parse=parse_quantity,
            check=check_quantity,
            example="3",
            aliases=("人数", "几个人", "份数"),
        ),
        blessing_field(example="新年快乐，祝你好运！"),
        Field(
            "draw_at",
            "开奖时间",
            parse=parse_draw_at,
            check=check_draw_at,
            show=show_draw_at,
            example="明天20:00",
            aliases=("开奖", "时间"),
        ),
        theme_field(),
    )
