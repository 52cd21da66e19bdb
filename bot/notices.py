"""What the world is told when something happens, queued in the outbox in the same transaction.

Usage::

    notices = Notices(config, renderer)
    notices.order_placed(order)   # an SMS to the recipient, a WeChat message to the giver

Texts come from `templates/sms/` and `templates/notices/`. The giver's notice
names the gift and never the recipient's phone or address.
"""

from __future__ import annotations

from bot.config import Config
from bot.forms.order import OrderAnswers
from bot.outbox import enqueue
from bot.render import Renderer
from storage.models import Order


class Notices:
    def __init__(self, config: Config, renderer: Renderer):
        self.config = config
        self.renderer = renderer

    def order_placed(self, order: Order) -> None:
        when = OrderAnswers.from_order(order, self.config.delivery.timezone).delivery.label
        params = {"order_no": order.order_no, "gift": order.gift.name, "time": when}
        enqueue(
            "sms",
            f"sms:order:{order.order_no}",
            {
                "phone": order.phone,
                "text": self.renderer.text("sms/order_placed.txt", **params),
                "template": "order_placed",
                "params": params,
            },
        )
        share = order.share
        enqueue(
            "wechat_text",
            f"notice:claimed:{order.order_no}",
            {
                "openid": share.giver_id,
                "text": self.renderer.text("notices/claimed.txt", gift=order.gift, share=share),
            },
        )
