"""What people are told when something happens, queued in the outbox in the same transaction:
this module says what; bot/outgoing/channels.py says how it reaches them.

Usage::

    notices = Notices(config, renderer)
    notices.order_placed(order)                  # the order SMS to the recipient; the giver told
    notices.order_shipped(order)                 # SMS and a notice to the recipient
    notices.order_corrected(order, was)          # the same, once per correction of carrier or tracking
    notices.order_delivered(order)               # the giver
    notices.order_cancelled(order, refund=3360)  # SMS and a notice to the recipient; the giver,
                                                 # with the refund on its way when it was paid
    notices.share_reminder(share, refund=0)      # the giver: units left, when it expires
    notices.visit_reminder(share, person, gift)  # someone who opened it and did not order
    notices.thanks(order)                        # the giver: the recipient's words
    notices.draw_outcome(share, person, won=True)
    notices.draw_drawn(share, entrants, winners, returned, refund=0)
    notices.paid(share, card)                    # the giver: the card to forward, once paid
    notices.refunded(share, refund)              # the giver: what for, and how much (¥336.00)
    notices.greeting_refused(share, "picture", Code.MEDIA_TOO_BIG)   # the giver: why not

Texts come from `templates/sms/` and `templates/notices/`. What goes to the giver names the
gift and never the recipient's phone or address; money is spoken of only where it moved (the
callers pass the refund in fen, 0 when nothing was paid). Each notice has one idempotency key,
so a retried transaction queues it once. A person is an OpenID or `tel:<mobile>`
(bot/visitors.py); a notice that may become an SMS carries it (its kind in bot/sms_kinds.py),
and one that may not is not queued for a person known only by a mobile.
"""

from __future__ import annotations

import hashlib

from bot import visitors
from bot.codes import Code
from bot.config import Config
from bot.forms.order import OrderAnswers
from bot.outgoing.messaging import Notice, SmsNotice, wechat_text
from bot.outgoing.outbox import enqueue
from bot.render import Renderer, money
from storage.models import Order, Outbox, Refund, Share


class Notices:
    def __init__(self, config: Config, renderer: Renderer):
        self.config = config
        self.renderer = renderer

    # -- orders -------------------------------------------------------------------------

    def order_placed(self, order: Order) -> None:
        params = {"order_no": order.order_no, "gift": order.gift.name, "time": self._when(order)}
        self._sms(order, "order_placed", params)
        self._tell(
            order.share.giver_id, f"notice:claimed:{order.order_no}", "notices/claimed.txt",
            "claimed", order.share, gift=order.share.gift, order=order,
        )  # fmt: skip

    def order_shipped(self, order: Order) -> None:
        params = {"order_no": order.order_no, "carrier": order.carrier, "tracking": order.tracking}
        self._sms(order, "order_shipped", params)
        self._tell(
            order.recipient_id, f"notice:shipped:{order.order_no}", "notices/shipped.txt",
            "shipped", order.share, gift=order.gift, order=order,
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
        self._tell(
            order.recipient_id, f"notice:corrected:{order.order_no}:{done + 1}:{change}",
            "notices/corrected.txt", "corrected", order.share, gift=order.gift, order=order,
        )  # fmt: skip

    def order_delivered(self, order: Order) -> None:
        self._tell(
            order.share.giver_id, f"notice:delivered:{order.order_no}", "notices/delivered.txt",
            "delivered", order.share, gift=order.gift, order=order,
        )  # fmt: skip

    def order_cancelled(self, order: Order, refund: int = 0) -> None:
        """`refund`: fen going back to the giver for its unit (0: nothing was paid)."""
        self._sms(order, "order_cancelled", {"order_no": order.order_no, "gift": order.gift.name})
        key = f"notice:cancelled:{order.order_no}"
        self._tell(
            order.recipient_id, f"{key}:recipient", "notices/cancelled_recipient.txt",
            "cancelled", order.share, gift=order.gift, order=order,
        )  # fmt: skip
        self._tell(
            order.share.giver_id, f"{key}:giver", "notices/cancelled_giver.txt", "cancelled",
            order.share, gift=order.gift, order=order, refund=refund,
        )  # fmt: skip

    def thanks(self, order: Order) -> None:
        self._tell(
            order.share.giver_id, f"notice:thanks:{order.order_no}", "notices/thanks.txt",
            "thanks", order.share, gift=order.gift, order=order,
        )  # fmt: skip

    # -- shares -------------------------------------------------------------------------

    def share_reminder(self, share: Share, refund: int = 0) -> None:
        """`refund`: fen the giver gets back at the expiry if nobody claims what is left."""
        gift, expires = share.gift, self.renderer.local(share.expires_at)
        self._tell(
            share.giver_id, f"remind:share:{share.id}", "notices/remind_giver.txt", "expiring",
            share, sms=("reminder", {"gift": gift.name, "time": expires}), gift=gift,
            url=self._claim_url(share), refund=refund,
        )  # fmt: skip

    def visit_reminder(self, share: Share, person: str, gift) -> None:
        """`gift` as the visitor may see it (a surprise's wrapping: bot/gifting/surprise.py)."""
        expires = self.renderer.local(share.expires_at)
        self._tell(
            person, f"remind:visit:{share.id}:{person}", "notices/remind_visitor.txt", "waiting",
            share, sms=("reminder", {"gift": gift.name, "time": expires}), gift=gift,
            url=self._claim_url(share),
        )  # fmt: skip

    def paid(self, share: Share, card: dict) -> None:
        """The card to forward (title, description, url, picurl), once WeChat Pay vouched for
        the payment; its text where WeChat takes no card."""
        self._tell(
            share.giver_id, f"notice:paid:{share.id}", "notices/paid.txt", "paid", share,
            card=card, gift=share.gift, url=card["url"],
        )  # fmt: skip

    def refunded(self, share: Share, refund: Refund) -> None:
        """A refund WeChat Pay says succeeded: what it was for, and how much."""
        params = {"gift": share.gift.name, "amount": money(refund.amount)}
        self._tell(
            share.giver_id, f"notice:refund:{refund.out_refund_no}", "notices/refunded.txt",
            "refund", share, sms=("refund", params), gift=share.gift, refund=refund,
        )  # fmt: skip

    def greeting_refused(self, share: Share, kind: str, reason: Code) -> None:
        """The giver's picture or voice could not be used: why, and that the text stands."""
        self._tell(
            share.giver_id, f"notice:greeting:{share.id}:{kind}", "notices/greeting_refused.txt",
            "greeting", share, gift=share.gift, kind=kind, reason=reason,
        )  # fmt: skip

    # -- draws --------------------------------------------------------------------------

    def draw_outcome(self, share: Share, person: str, won: bool) -> None:
        outcome = "won" if won else "lost"
        params = {"gift": share.gift.name}
        if won:
            params["time"] = self.renderer.local(share.expires_at)
        self._tell(
            person, f"draw:{outcome}:{share.id}:{person}", f"notices/draw_{outcome}.txt",
            outcome, share, sms=(f"draw_{outcome}", params), gift=share.gift,
            url=self._claim_url(share),
        )  # fmt: skip

    def draw_drawn(
        self, share: Share, entrants: int, winners: int, returned: int, refund: int = 0
    ) -> None:
        self._tell(
            share.giver_id, f"draw:drawn:{share.id}", "notices/draw_drawn.txt", "drawn", share,
            gift=share.gift, url=self._claim_url(share), entrants=entrants, winners=winners,
            returned=returned, refund=refund,
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
            answer=False,
        )

    def _tell(
        self, person: str, key: str, template: str, status: str, share: Share, *,
        sms: tuple[str, dict[str, str]] | None = None, card: dict | None = None, **context,
    ) -> None:  # fmt: skip
        """Queue the notice for `person`; `sms`: the SMS kind and variables it may become."""
        if visitors.is_mobile(person) and sms is None:
            return  # no chat to reach them, and this news is no SMS (the order's SMS tells them)
        context.setdefault("share", share)
        text = self.renderer.text(template, chat=True, **context)
        # Where the person cannot answer (a subscription message in 服务通知), words that say
        # "reply here" are left out (`chat` false in the template).
        away = self.renderer.text(template, chat=False, **context)
        url = context.get("url") or self._claim_url(share)
        title = self.renderer.text("notices/status.txt", status=status)
        notice = Notice(
            first=text.splitlines()[0], gift=context["gift"].name, status=title, url=url
        )
        texted = None
        if sms is not None:
            kind, params = sms
            words = self.renderer.text(f"sms/{kind}.txt", url=url, **params)
            texted = SmsNotice(kind, params, words)
        payload = wechat_text(
            person, text, notice, card, share=share.id, title=title, sms=texted,
            away=away if away != text else None,
        )  # fmt: skip
        enqueue("wechat_text", key, payload, answer=False)

    def _claim_url(self, share: Share) -> str:
        return f"{self.config.server.public_url}/claim/{share.token}"

    def _when(self, order: Order) -> str:
        return OrderAnswers.from_order(order, self.config.delivery.timezone).delivery.label
