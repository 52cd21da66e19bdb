"""What the world is told when something happens, queued in the outbox in the same transaction.

Usage::

    notices = Notices(config, renderer)
    notices.order_placed(order)        # an SMS to the recipient, a WeChat message to the giver
    notices.order_shipped(order)       # SMS and WeChat to the recipient: carrier, tracking
    notices.order_corrected(order, was)   # the same, once per correction of carrier or tracking
    notices.order_delivered(order)     # WeChat to the giver
    notices.order_cancelled(order)     # SMS and WeChat to the recipient, WeChat to the giver
    notices.share_reminder(share)      # WeChat to the giver: units left, when it expires
    notices.visit_reminder(share, openid, gift)   # WeChat to someone who opened it and did not order
    notices.thanks(order)              # WeChat to the giver: the recipient's words

Texts come from `templates/sms/` and `templates/notices/`. What goes to the giver names the
gift and never the recipient's phone or address. Each notice has one idempotency key, so a
retried transaction queues it once. WeChat messages leave only when WeChat allows them
(bot/outgoing/messaging.py): within the 48-hour window, else as a template message, else skipped.
"""

from __future__ import annotations

import hashlib

from bot import visitors
from bot.config import Config
from bot.forms.order import OrderAnswers
from bot.outgoing.messaging import Notice, wechat_text
from bot.outgoing.outbox import enqueue
from bot.render import Renderer
from storage.models import Order, Outbox, Share


class Notices:
    def __init__(self, config: Config, renderer: Renderer):
        self.config = config
        self.renderer = renderer

    # -- orders -------------------------------------------------------------------------

    def order_placed(self, order: Order) -> None:
        params = {"order_no": order.order_no, "gift": order.gift.name, "time": self._when(order)}
        self._sms(order, "order_placed", params)
        self._wechat(
            order.share.giver_id, f"notice:claimed:{order.order_no}", "notices/claimed.txt",
            "claimed", gift=order.gift, share=order.share,
        )  # fmt: skip

    def order_shipped(self, order: Order) -> None:
        params = {"order_no": order.order_no, "carrier": order.carrier, "tracking": order.tracking}
        self._sms(order, "order_shipped", params)
        self._wechat(
            order.recipient_id, f"notice:shipped:{order.order_no}", "notices/shipped.txt",
            "shipped", gift=order.gift, order=order,
        )  # fmt: skip

    def order_corrected(self, order: Order, was: tuple[str, str]) -> None:
        """The recipient told a shipped order's new carrier and tracking, once per correction:
        the keys count the corrections before and name what it was and is now, so the same
        correction queued twice goes once, and changing it back tells again."""
        change = hashlib.blake2b(
            "\x1f".join([*was, order.carrier, order.tracking]).encode(), digest_size=6
        ).hexdigest()
        prefix = f"sms:order_corrected:{order.order_no}:"
        done = Outbox.select().where(Outbox.key.startswith(prefix)).count()
        params = {"order_no": order.order_no, "carrier": order.carrier, "tracking": order.tracking}
        # The vendor's approved order_shipped template carries the same variables.
        self._sms(order, "order_shipped", params, key=f"{prefix}{done + 1}:{change}",
                  text="sms/order_corrected.txt")  # fmt: skip
        self._wechat(
            order.recipient_id, f"notice:corrected:{order.order_no}:{done + 1}:{change}",
            "notices/corrected.txt", "corrected", gift=order.gift, order=order,
        )  # fmt: skip

    def order_delivered(self, order: Order) -> None:
        self._wechat(
            order.share.giver_id, f"notice:delivered:{order.order_no}", "notices/delivered.txt",
            "delivered", gift=order.gift, order=order,
        )  # fmt: skip

    def order_cancelled(self, order: Order) -> None:
        self._sms(order, "order_cancelled", {"order_no": order.order_no, "gift": order.gift.name})
        key = f"notice:cancelled:{order.order_no}"
        self._wechat(
            order.recipient_id, f"{key}:recipient", "notices/cancelled_recipient.txt",
            "cancelled", gift=order.gift, order=order,
        )  # fmt: skip
        self._wechat(
            order.share.giver_id, f"{key}:giver", "notices/cancelled_giver.txt", "cancelled",
            gift=order.gift, order=order,
        )  # fmt: skip

    def thanks(self, order: Order) -> None:
        self._wechat(
            order.share.giver_id, f"notice:thanks:{order.order_no}", "notices/thanks.txt",
            "thanks", gift=order.gift, order=order,
        )  # fmt: skip

    # -- shares -------------------------------------------------------------------------

    def share_reminder(self, share: Share) -> None:
        self._wechat(
            share.giver_id, f"remind:share:{share.id}", "notices/remind_giver.txt", "expiring",
            gift=share.gift, share=share, url=self._claim_url(share),
        )  # fmt: skip

    def visit_reminder(self, share: Share, openid: str, gift) -> None:
        """`gift` as the visitor may see it (a surprise's wrapping: bot/gifting/surprise.py)."""
        self._wechat(
            openid, f"remind:visit:{share.id}:{openid}", "notices/remind_visitor.txt",
            "waiting", gift=gift, share=share, url=self._claim_url(share),
        )  # fmt: skip

    # -- draws --------------------------------------------------------------------------

    def draw_outcome(self, share: Share, openid: str, won: bool) -> None:
        outcome = "won" if won else "lost"
        self._wechat(
            openid, f"draw:{outcome}:{share.id}:{openid}", f"notices/draw_{outcome}.txt", outcome,
            gift=share.gift, share=share, url=self._claim_url(share),
        )  # fmt: skip

    def draw_drawn(self, share: Share, entrants: int, winners: int, returned: int) -> None:
        self._wechat(
            share.giver_id, f"draw:drawn:{share.id}", "notices/draw_drawn.txt", "drawn",
            gift=share.gift, share=share, url=self._claim_url(share), entrants=entrants,
            winners=winners, returned=returned,
        )  # fmt: skip

    # -- how they leave -------------------------------------------------------------------

    def _sms(
        self, order: Order, template: str, params: dict[str, str], key: str = "", text: str = ""
    ) -> None:
        """`template`: the vendor's (and the text's, unless `text` names another)."""
        kind = "order" if template == "order_placed" else template  # the first kind's key stays
        enqueue(
            "sms",
            key or f"sms:{kind}:{order.order_no}",
            {
                "phone": order.phone,
                "text": self.renderer.text(text or f"sms/{template}.txt", **params),
                "template": template,
                "params": params,
            },
        )

    def _wechat(self, openid: str, key: str, template: str, status: str, **context) -> None:
        if visitors.is_mobile(openid):
            return  # a visitor known by a verified mobile has no chat: the SMS tells them
        text = self.renderer.text(template, **context)
        share = context.get("share") or context["order"].share
        notice = Notice(
            first=text.splitlines()[0],
            gift=context["gift"].name,
            status=self.renderer.text("notices/status.txt", status=status),
            url=self._claim_url(share),
        )
        enqueue("wechat_text", key, wechat_text(openid, text, notice))

    def _claim_url(self, share: Share) -> str:
        return f"{self.config.server.public_url}/claim/{share.token}"

    def _when(self, order: Order) -> str:
        return OrderAnswers.from_order(order, self.config.delivery.timezone).delivery.label
