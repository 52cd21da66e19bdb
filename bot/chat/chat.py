"""The chat: one push from WeChat in, one reply out, each push acted on once.

Usage::

    chat = Chat(config, renderer, notices, clock=utcnow)
    reply = await services.db.write(chat.handle, Incoming(openid="o_a", kind="text", …))

Order of reading a message: the words that work everywhere (menu words, 礼品,
取消 …) first, then the form in progress, then browsing (a number picks a
gift, 送 shares it), then a short help — never silence. The whole message is
one transaction: WeChat's retry of it finds the first reply and gets it back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from bot import users
from bot.chat import pushes
from bot.chat.conversation import Ended, State, load, save
from bot.chat.engine import Engine
from bot.chat.flows import build_flows
from bot.chat.incoming import Incoming, media_of, subscription
from bot.config import Config
from bot.forms.base import Invalid
from bot.forms.numbers import small_number
from bot.gifting import (
    cards,
    catalogue,
    draws,
    facts,
    orders,
    promises,
    reminders,
    shares,
    thanks,
)
from bot.outgoing.notices import Notices
from bot.render import Renderer
from bot.replies import Card, Reply, Text, Transfer, as_dict, from_dict
from bot.words import (
    Command,
    Move,
    Word,
    after,
    claim_token,
    command_of,
    menu_command,
    normalize,
)
from storage import hot
from storage.models import utcnow

CLAIM_LINK_RE = re.compile(r"(?:/claim/|^)([A-Za-z0-9_-]{20,64})(?:[/?#]|$)")
QR_PREFIX = "qrscene_"
TOUCH_EVERY = dt.timedelta(seconds=60)  # a user's last_seen is written at most this often
TOUCHED_KEPT = 100_000  # users remembered as touched; then the memory starts afresh
_NEVER = dt.datetime.min
# The words that share a picked gift: the flow each starts, and the share's kind.
SHARE_KINDS = {Word.SHARE: ("share", "gift"), Word.SURPRISE: ("share", "surprise"),
               Word.DRAW: ("draw", "draw")}  # fmt: skip
GIVING_FLOWS = tuple(sorted({flow for flow, _ in SHARE_KINDS.values()}))  # steps ask the limits


class Chat:
    def __init__(
        self,
        config: Config,
        renderer: Renderer,
        notices: Notices,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.config = config
        self.renderer = renderer
        self.clock = clock
        self.notices = notices
        self.engine = Engine(config, renderer, build_flows(config, renderer, notices))
        self.timeout = dt.timedelta(minutes=config.conversation.timeout_minutes)
        self._touched: dict[str, dt.datetime] = {}  # openid → when this process recorded them
        self._shown_catalogue: tuple = (None, None)  # (the gift list, its rendered reply)

    def handle(self, msg: Incoming, guard: tuple | None = None) -> Reply:
        """Act on a push once; a retry of it gets the first reply again. Runs as a database
        write job (`services.db.write`): one transaction, run again on Conflict. `guard`: the
        plaintext-mode replay guard of the request (`pushes.guard`); raises `pushes.Replayed`
        when its timestamp and nonce came with another body."""
        key, now = msg.dedupe_key, self.clock()
        giving = (GIVING_FLOWS, *shares.allowance_window(self.config, now))
        opened = hot.open_message(key, msg.openid, now, guard, giving)
        if opened.replayed:
            raise pushes.Replayed
        if not opened.first:
            return from_dict(opened.stored)
        state = load(msg.openid, now, self.timeout, opened.conversation)
        self._touch(msg, now)  # after the conversation's lock, as every message takes them
        try:
            reply = self._dispatch(msg, state, now)
        except Ended as ended:
            state.clear()
            reply = self._text(f"errors/{ended.code}.txt", **ended.params)
        if state.timed_out and isinstance(reply, Text):
            reply = Text(self.renderer.text("flow/timed_out.txt") + "\n\n" + reply.content)
        save(state, now)
        hot.keep_reply(key, as_dict(reply))
        return reply

    def _touch(self, msg: Incoming, now: dt.datetime) -> None:
        """Record the user; `last_seen` to within TOUCH_EVERY, which WeChat's 48-hour window
        for customer-service messages does not notice, and which spares most messages a write."""
        subscribed = subscription(msg)
        if subscribed is not None:
            users.touch(msg.openid, now, subscribed=subscribed, message=True)
        elif now - self._touched.get(msg.openid, _NEVER) >= TOUCH_EVERY:
            hot.touch_user(msg.openid, now, message=True)
        else:
            return
        if len(self._touched) > TOUCHED_KEPT:
            self._touched.clear()
        self._touched[msg.openid] = now

    # -- reading the message ---------------------------------------------------

    def _dispatch(self, msg: Incoming, state: State, now: dt.datetime) -> Reply:
        if msg.kind == "event":
            return self._event(msg, state, now)
        if msg.kind != "text":
            if state.active:
                return self.engine.non_text(state, msg.kind, msg.label, now, media_of(msg))
            return self._text("chat/not_text.txt", kind=msg.kind)
        text = msg.text.strip()  # answers are kept as typed; words are matched normalized
        word = normalize(text)
        if command := command_of(word):
            return self.command(command, state, now)
        if token := claim_token(word):
            return self.start_claim(token, state, now)
        if state.flow and (reply := self.engine.step(state, text, now, media_of(msg))) is not None:
            return reply
        if state.timed_out:  # an answer to a form that is gone: say so, do not act on it
            return self._help(state)
        if word == Move.CONFIRM and (order := orders.by_number(state.context.get("last_order"))):
            return self._text("errors/already_claimed.txt", order=order)
        if (note := thanks.note_in(text)) is not None:
            return self.thank(note, state, now)
        if (which := after(Word.REVOKE, text)) is not None:
            return self.revoke(which, state, now)
        if (number := small_number(word)) is not None:
            return self.pick(number, state)
        if word in SHARE_KINDS:  # 送, 惊喜, 抽奖
            return self.start_share(state, now, word)
        return self._help(state)

    def _event(self, msg: Incoming, state: State, now: dt.datetime) -> Reply:
        """A person's action gets an answer; WeChat's notifications get `success` (None)."""
        if msg.event in ("subscribe", "scan"):
            scene = msg.event_key.removeprefix(QR_PREFIX)
            if scene and shares.by_token(scene):
                return self.start_claim(scene, state, now)
            return self._text("chat/welcome.txt", gifts=catalogue.active())
        if msg.event == "click":
            return self.command(menu_command(msg.event_key), state, now)
        if msg.event == "scancode_waitmsg":  # WeChat shows "receiving…" until we answer
            token = CLAIM_LINK_RE.search(msg.scan_result)
            if token and shares.by_token(token.group(1)):
                return self.start_claim(token.group(1), state, now)
            return self._text("chat/scan_unknown.txt")
        # unsubscribe, VIEW, LOCATION reports, pic_* and location_select (their pictures and
        # places follow as messages), template and mass-send reports, cards, kf sessions …
        return None

    # -- what the words do -----------------------------------------------------

    def command(self, command: Command | None, state: State, now: dt.datetime) -> Reply:
        """A command word or menu key; a form in progress is paused, not lost."""
        if command == Command.GIFTS:
            reply = self._catalogue()
        elif command == Command.MY_GIFTS:
            given = shares.of_giver(state.openid)
            listed = state.context["listed_shares"] = [share.id for share in given]  # 撤回 <n>
            notes, cancelled = orders.news_for(listed)
            reply = self._text(
                "chat/my_gifts.txt",
                shares=given,
                facts={share.id: facts.of(share, now) for share in given},
                notes=notes,
                cancelled=cancelled,
                draws=draws.for_giver(given),
                now=now,
            )
        elif command == Command.MY_ORDERS:
            reply = self._text("chat/my_orders.txt", orders=orders.of_recipient(state.openid))
        elif command == Command.HUMAN:
            reply = self.human()
        else:  # 帮助 while a form waits, paused already, names 继续 too
            reply = self._text("chat/help.txt", paused=bool(state.flow and state.paused))
        if state.active:
            state.paused = True
            if isinstance(reply, Text):  # a transfer shows nothing: the form waits all the same
                reply = Text(reply.content + "\n\n" + self.renderer.text("flow/paused.txt"))
        return reply

    def human(self) -> Reply:
        """人工 / 客服: WeChat's customer service takes over ([support] human), or how to reach
        a person ([support] contact)."""
        if self.config.support.human:
            return Transfer()
        return self._text("chat/human.txt", contact=self.config.support.contact)

    def _catalogue(self) -> Text:
        """The catalogue as a reply, rendered again only when the catalogue changed."""
        gifts = catalogue.active()
        shown = self._shown_catalogue
        if shown[0] is not gifts:
            shown = self._shown_catalogue = (gifts, self._text("chat/catalogue.txt", gifts=gifts))
        return shown[1]

    def pick(self, number: int, state: State) -> Reply:
        gift = catalogue.gift_by_number(number)
        if gift is None:
            return self._text(
                "chat/no_such_number.txt", number=number, count=len(catalogue.active())
            )
        state.context["picked"] = gift.id
        return Card(
            title=self.renderer.text("chat/gift_card_title.txt", gift=gift),
            description=self.renderer.text("chat/gift_card_description.txt", gift=gift),
            picurl=cards.absolute(self.config, gift.image),
            url=f"{self.config.server.public_url}/gifts/{gift.id}",
        )

    def start_share(self, state: State, now: dt.datetime, word: Word = Word.SHARE) -> Reply:
        gift = catalogue.get(state.context.get("picked") or "")
        if gift is None or not gift.active:
            return self._text("chat/pick_first.txt")
        flow, kind = SHARE_KINDS[word]
        context = {"gift_id": gift.id, "kind": kind}
        return self.engine.start(state, flow, context, now)  # may refuse: Ended

    def start_claim(self, token: str, state: State, now: dt.datetime) -> Reply:
        share = shares.by_token(token, state.openid)  # and their order: claim_refusal asks
        if share and draws.is_draw(share) and share.drawn_at is None:
            return self.join_draw(share, state, now)
        refusal = orders.claim_refusal(share, state.openid, now)
        if refusal:
            order = share and orders.existing_order(share, state.openid)
            reply = self._text(f"errors/{refusal}.txt", share=share, order=order)
            if state.active:  # the form in progress is untouched: say so
                reply = Text(reply.content + "\n\n" + self.renderer.text("flow/still_active.txt"))
            return reply
        reminders.record_visit(share, state.openid, now)
        state.read["share"] = share  # the form's subject: not read twice
        return self.engine.start(state, "order", {"token": share.token}, now)

    def join_draw(self, share, state: State, now: dt.datetime) -> Reply:
        """领取 <token> before a draw is drawn: join it (once)."""
        try:
            joined = draws.join(share.token, state.openid, "chat", now)
        except Invalid as refused:
            return Text(self.renderer.error(refused))
        view = draws.seen_by(share, state.openid, now)
        offer = promises.in_chat(self.config, share, state.openid, now)  # how its result comes
        return self._text(
            "chat/draw_joined.txt", share=share, draw=view, again=not joined, promise=offer
        )

    def thank(self, note: str, state: State, now: dt.datetime) -> Reply:
        """谢谢 <text>: a note to the giver of this person's latest order."""
        try:
            order = thanks.thank(self.notices, self.config, state.openid, note, now)
        except Invalid as refused:
            return Text(self.renderer.error(refused))
        return self._text("chat/thanked.txt", order=order)

    def revoke(self, which: str, state: State, now: dt.datetime) -> Reply:
        """撤回 <n>: withdraw share n of the 我送出的 list last shown to this giver (or, if none
        was shown, of the list as it would be shown now)."""
        listed = state.context.get("listed_shares") or [s.id for s in shares.of_giver(state.openid)]
        number = small_number(which)
        if number is None or not 1 <= number <= len(listed):
            return self._text("errors/revoke_which.txt", number=number, count=len(listed))
        try:
            share = shares.revoke(state.openid, listed[number - 1], now)
        except Invalid as refused:
            return Text(self.renderer.error(refused, count=len(listed)))
        return self._text("chat/revoked.txt", share=share)

    def _help(self, state: State) -> Reply:
        return self._text("chat/help.txt", paused=bool(state.flow and state.paused))

    def _text(self, template: str, **context) -> Text:
        return Text(self.renderer.text(template, **context))
