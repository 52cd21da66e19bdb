"""What the pay page shows and what paying hands to WeChat's JS bridge: the views of
bot/money/paydesk.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.codes import Code
from bot.money import payments
from bot.outgoing.channels import Offer
from storage.models import Share


@dataclass
class PayView:
    """The pay page of a share, as this visitor sees it."""

    share: Share
    refusal: Code | None = None
    login: bool = False
    promise: Offer | None = None  # the giver's news of it to come (bot/gifting/promises.py)

    @property
    def gift(self):
        return self.share.gift

    @property
    def amount(self) -> int:
        return payments.amount_of(self.share)


@dataclass(frozen=True)
class Attempt:
    out_trade_no: str
    bridge: dict[str, str]  # WeixinJSBridge's getBrandWCPayRequest arguments, paySign made


def unix(when: dt.datetime) -> float:
    return when.replace(tzinfo=dt.UTC).timestamp()
