"""The confirmation page (S14's end): the visitor's order with what they answered, its
shipping news to come, and the box for a thank-you note to the giver.

Usage::

    done = await confirmation.done(services, token, openid)   # DoneView, or a ClaimView
    await confirmation.thank(services, token, openid, "谢谢！")  # Placed, or the DoneView saying why not
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.forms.base import Field, Invalid
from bot.forms.order import OrderAnswers
from bot.gifting import promises, thanks
from bot.gifting.claims import ClaimView, Placed, Services, order_form, view_of
from bot.outgoing.channels import Offer
from storage.models import Order, Share


@dataclass
class DoneView:
    share: Share
    order: Order
    rows: list[tuple[Field, str]]
    thanks_text: str = ""  # a note that was refused, kept for the box
    thanks_error: Invalid | None = None
    promise: Offer | None = None  # its shipping news, in WeChat (bot/gifting/promises.py)
    texts_shipping: bool = False  # the order's mobile gets an SMS when it ships

    @property
    def gift(self):
        return self.order.gift  # the gift ordered: a surprise revealed, a swap's new gift


async def done(
    services: Services, token: str, openid: str | None, in_wechat: bool = False
) -> DoneView | ClaimView | None:
    now, config = services.now(), services.config
    view = await services.db.run(view_of, token, openid, now)
    if view is None or view.order is None:
        return view
    taken = view.order.gift if view.order.swapped_from else None
    form = order_form(services, view.share, swap=taken)
    answers = OrderAnswers.from_order(view.order, config.delivery.timezone).as_answers()
    rows = [(f, f.show(answers[f.name], form.ctx)) for f in form.active_fields()]
    done = DoneView(view.share, view.order, rows, texts_shipping=promises.texts_shipping(config))
    if view.order.status == "placed":  # its shipping is news to come
        done.promise = await services.db.run(
            promises.on_order_page, config, view.share, openid, in_wechat, now
        )
    return done


async def thank(
    services: Services, token: str, openid: str, text: str
) -> Placed | DoneView | ClaimView | None:
    """The confirmation page's box: a note to the giver (bot/gifting/thanks.py), once per order."""
    view = await done(services, token, openid)
    if not isinstance(view, DoneView):
        return view
    try:
        await services.db.write(
            thanks.thank, services.notices, services.config, openid, text, services.now(),
            view.order.order_no,  # the runner passes no keywords
        )  # fmt: skip
    except Invalid as refused:
        view.thanks_text, view.thanks_error = text, refused
        return view
    services.worker.wake.set()
    return Placed(token)
