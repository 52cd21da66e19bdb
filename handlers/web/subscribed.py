"""Where WeChat's one-time subscription page sends the visitor back (bot/outgoing/subscriptions.py).

GET /subscribed?openid=…&template_id=…&action=confirm|cancel&scene=…&reserved=…
                               the grant kept (once) when they confirmed, then the page again
GET /dev/subscribemsg?…        the sandbox's stand-in of WeChat's page (mp.weixin.qq.com):
                               允许 or 取消, as the sandbox's user, then back here

WeChat's docs write the way back as `redirect_url/?openid=…`, so `/subscribed/` is served too.
A `reserved` we did not make for this person (forged, stale, someone else's link) is a 400 and
keeps nothing.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import tornado.web

from bot.outgoing import subscriptions
from handlers.web.base import BaseHandler
from handlers.web.dev import DevHandler

BACK = ("openid", "template_id", "action", "scene", "reserved")


class Subscribed(BaseHandler):
    """WeChat's redirect back: the grant kept, the page shown again."""

    async def get(self) -> None:
        query = {name: self.get_query_argument(name, "") for name in BACK}
        services = self.services
        back = await services.db.write(
            subscriptions.came_back, services.config, query, self.current_user, services.now()
        )
        if back is None:
            self.refusal = "a reserved we did not make for this visitor"
            return self.render_page("pages/error.html", status=400, code="subscription_refused")
        self.redirect(back, status=303)


class DevSubscribe(DevHandler):
    """The sandbox's WeChat page that asks for one message: checked as WeChat checks it."""

    def get(self) -> None:
        config = self.services.config
        query = {k: self.get_query_argument(k, "") for k in
                 ("action", "appid", "scene", "template_id", "redirect_url", "reserved")}  # fmt: skip
        scene = query["scene"]
        wrong = (
            query["action"] != "get_confirm"
            or query["appid"] != config.wechat.app_id
            or query["template_id"] != subscriptions.template_of(config)
            or not (scene.isdigit() and int(scene) < subscriptions.SCENES)
            or urlsplit(query["redirect_url"]).netloc != urlsplit(config.server.public_url).netloc
            or not (query["reserved"].isalnum() and len(query["reserved"]) <= 128)
        )
        if wrong or not self.current_user:
            raise tornado.web.HTTPError(400, "not a link WeChat's page would take")
        answer = {k: query[k] for k in ("template_id", "scene", "reserved")}
        back = query["redirect_url"]
        glue = "&" if "?" in back else "?"
        self.render_page(
            "pages/dev_subscribe.html",
            confirm=back
            + glue
            + urlencode({"openid": self.current_user, **answer, "action": "confirm"}),  # fmt: skip
            cancel=back + glue + urlencode({**answer, "action": "cancel"}),
        )
