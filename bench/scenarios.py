"""The scenarios: what users send, how their state is seeded, what the database must hold after.

Each scenario builds chains (one user's requests, in order) for a target:
the bot, after seeding what it needs with real messages, or the bare handler,
with requests of the same shape. After a run against the bot, `check` counts
in the bot's database that every push was kept once and nothing was dropped.

    catalogue   1 000 users each sending 礼品 (read-only but for the message's own row)
    form-step   users in the share dialogue (礼品 → 1 → 送, seeded) answer the quantity question
    claim       a recipient's whole claim in chat: 领取 <token>, name, phone, address,
                delivery, 确认 (shares seeded by real giver dialogues)
    page        GET /claim/<token> with the visitor's signed cookie
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import tornado.web

from bench import wrk
from bench.server import BotServer, http_get, http_post
from bench.wire import Wire

MSG_ID_BASE = 10**17  # 18-digit MsgIds: their keys sort as numbers, so a run is a key range
NAME, PHONE = "张小红", "13800138000"
ADDRESS = "广东省深圳市南山区科技园南区 8 栋 1201"
GIVER_STEPS = (("1", "/gifts/"), ("送", "送几份"), ("10", "祝福语"), ("跳过", "请确认"))
CLAIM_URL = "<Url><!%[CDATA%[[^%]]*/claim/([^%]]+)%]%]></Url>"
RECIPIENT_STEPS = (
    (NAME, "收货人手机"),
    (PHONE, "收货地址"),
    (ADDRESS, "收货时间"),
    ("1", "请核对收货信息"),
    ("确认", "领取成功"),
)


def recipient_steps(i: int) -> tuple[tuple[str, str], ...]:
    """The i-th claim's answers: each recipient their own mobile, as in a campaign (the
    outbox sends a person's SMS one after another: bot/outgoing/outbox_lanes.py)."""
    mobile = f"{PHONE[:3]}{i % 10**8:08d}"
    return tuple((mobile if text == PHONE else text, expect) for text, expect in RECIPIENT_STEPS)


UNITS_PER_SHARE = 10


@dataclass
class Batch:
    """The chains of one run, and what the checks need to know about them."""

    chains: list[wrk.Chain]
    msg_ids: tuple[int, int] = (0, 0)  # [first, last] MsgId sent in this batch
    users_prefix: str = ""
    seeding: list[str] = field(default_factory=list)  # problems while seeding
    messages: int = 0


@dataclass
class Context:
    """What one (database, workers) group shares: the bot, the bare handler, the wires."""

    bot: BotServer
    bare_url: str
    users: int = 1000
    connections: int = 16
    threads: int = 1
    bare_pid: int | None = None
    bot_hint: float | None = None  # msg/s of the bot, to size the pools of stateful scenarios
    bare_hint: float | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(int(time.time() * 1e6)))
    _tags: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self):
        token, app_id, key = self.bot.token, self.bot.config["wechat"]["app_id"], self.bot.aes_key
        self.bot_wire = Wire(token, app_id, self.bot.url.split("://", 1)[1], key)
        self.bare_wire = Wire(token, app_id, self.bare_url.split("://", 1)[1], key)
        self.aes = self.bot_wire.key

    def wire(self, target: str) -> Wire:
        return self.bot_wire if target == "bot" else self.bare_wire

    def url(self, target: str) -> str:
        return self.bot.url if target == "bot" else self.bare_url

    def msg_id(self) -> int:
        return MSG_ID_BASE + next(self._ids)

    def tag(self) -> str:
        return f"{next(self._tags):x}"

    def load(self, target: str, chains, seconds=None, route="to", cycle=False, aes=True, rate=0.0):
        return wrk.run(
            self.url(target), chains, target=target, route=route, seconds=seconds,
            connections=self.connections, threads=self.threads,
            aes_key=self.aes if aes else None, cycle=cycle, rate=rate,
        )  # fmt: skip

    def seed(self, chains: list[wrk.Chain]) -> tuple[wrk.Result, list[str]]:
        """Play `chains` against the bot until done; the problems, if any, as text."""
        result = self.load("bot", chains)
        problems = result.problems()
        if result.script.get("chains_done", 0) != len(chains):
            problems.append(f"{result.script.get('chains_done', 0)} of {len(chains)} chains done")
        if problems and result.evidence:
            problems.append("first bad replies:\n" + result.evidence[:3000])
        return result, problems


# -- database checks -----------------------------------------------------------------


def db_counts(db_url: str, queries: dict[str, tuple[str, list]]) -> dict[str, int]:
    """Run COUNT queries on the bot's database (plain SQL; `?` placeholders)."""
    from storage import db as storage

    database = storage.connect(db_url)
    try:
        out = {}
        for name, (sql, params) in queries.items():
            if storage.is_postgres():
                sql = sql.replace("?", "%s")
            out[name] = database.execute_sql(sql, params).fetchone()[0]
        return out
    finally:
        database.close()


def check_inbound(ctx: Context, batch: Batch, result: wrk.Result) -> tuple[list[str], dict]:
    """One InboundMessage row per push answered; none for pushes never sent."""
    lo, hi = batch.msg_ids
    counts = db_counts(
        ctx.bot.db_url,
        {"rows": ('SELECT COUNT(*) FROM "inbound_message" WHERE "key" BETWEEN ? AND ?',
                  [f"msg:{lo}", f"msg:{hi}"])},
    )  # fmt: skip
    rows, ok, sent = counts["rows"], result.ok, result.script.get("sent", 0)
    problems = []
    if rows < ok:
        problems.append(f"{ok - rows} pushes answered but not kept (rows {rows} < replies {ok})")
    if rows > sent:
        problems.append(f"{rows - sent} rows more than pushes sent ({rows} > {sent})")
    return problems, {"inbound rows": rows, "pushes sent": sent, "good replies": ok}


# -- scenarios --------------------------------------------------------------------------


class Scenario:
    name = ""
    route = "to"  # how a reply finds its request: by ToUserName, or by arrival order
    cycle = False
    per_chain = 1  # measured messages per chain
    stateful = False  # chains for the bot need seeding (costly: size them by the bot's rate)
    unit = ""  # a second rate to report (claims/s)

    def prepare(self, ctx: Context) -> list[str]:
        """Once per bot start; problems while preparing."""
        return []

    def batch(self, ctx: Context, target: str, messages: int) -> Batch:
        raise NotImplementedError

    def check(self, ctx: Context, batch: Batch, result: wrk.Result) -> tuple[list[str], dict]:
        return check_inbound(ctx, batch, result)


class Catalogue(Scenario):
    name = "catalogue"

    def batch(self, ctx: Context, target: str, messages: int) -> Batch:
        wire, tag = ctx.wire(target), ctx.tag()
        users = [f"o_cat_{tag}_{i:05d}" for i in range(ctx.users)]
        ids = [ctx.msg_id() for _ in range(messages)]
        chains = [
            wrk.Chain(u, [wrk.Step(wire.text_push(u, "礼品", i), expect="礼物清单")])
            for u, i in zip(itertools.islice(itertools.cycle(users), messages), ids, strict=True)
        ]
        return Batch(chains, (ids[0], ids[-1]), messages=messages)


class FormStep(Scenario):
    name = "form-step"
    stateful = True

    def batch(self, ctx: Context, target: str, messages: int) -> Batch:
        wire, tag = ctx.wire(target), ctx.tag()
        prefix = f"o-fs-{tag}-"  # no "_": it is a LIKE wildcard
        users = [f"{prefix}{i:06d}" for i in range(messages)]
        batch = Batch([], users_prefix=prefix, messages=messages)
        if target == "bot":
            steps = (("礼品", "礼物清单"), ("1", "/gifts/"), ("送", "送几份"))
            seeds = [
                wrk.Chain(
                    u, [wrk.Step(wire.text_push(u, t, ctx.msg_id()), expect=e) for t, e in steps]
                )
                for u in users
            ]
            _, batch.seeding = ctx.seed(seeds)
        ids = [ctx.msg_id() for _ in users]
        batch.msg_ids = (ids[0], ids[-1])
        batch.chains = [
            wrk.Chain(u, [wrk.Step(wire.text_push(u, "1", i), expect="祝福语")])
            for u, i in zip(users, ids, strict=True)
        ]
        return batch

    def check(self, ctx: Context, batch: Batch, result: wrk.Result) -> tuple[list[str], dict]:
        problems, facts = check_inbound(ctx, batch, result)
        moved = db_counts(
            ctx.bot.db_url,
            {"moved": ('SELECT COUNT(*) FROM "conversation" WHERE "openid" LIKE ? '
                       "AND (\"answers\" LIKE ? OR \"answers\" LIKE ?)",
                       # JSON as orjson writes it (storage/models/base.py), or json.dumps did
                       [batch.users_prefix + "%", '%"quantity":1%', '%"quantity": 1%'])},
        )["moved"]  # fmt: skip
        facts["forms moved on"] = moved
        if moved < result.ok:
            problems.append(f"{result.ok - moved} answered forms did not keep the answer")
        return problems, facts


def giver_chains(ctx: Context, shares: int, tag: str) -> list[wrk.Chain]:
    wire = ctx.bot_wire
    chains = []
    for i in range(shares):
        g = f"o_giver_{tag}_{i:05d}"
        steps = [wrk.Step(wire.text_push(g, t, ctx.msg_id()), expect=e) for t, e in GIVER_STEPS]
        steps.append(
            wrk.Step(wire.text_push(g, "确认", ctx.msg_id()), expect="/claim/", capture=CLAIM_URL)
        )
        chains.append(wrk.Chain(g, steps))
    return chains


def seed_shares(ctx: Context, shares: int) -> tuple[list[str], list[str]]:
    """Real giver dialogues (1, 送, 10, 跳过, 确认); the claim tokens of their cards."""
    result, problems = ctx.seed(giver_chains(ctx, shares, ctx.tag()))
    tokens = [value for _, value in result.captures if value and value != "nil"]
    if len(tokens) != shares:
        problems.append(f"{len(tokens)} claim links from {shares} giver dialogues")
    return tokens, problems


class Claim(Scenario):
    name = "claim"
    stateful = True
    per_chain = 1 + len(RECIPIENT_STEPS)
    unit = "claims"

    def batch(self, ctx: Context, target: str, messages: int) -> Batch:
        wire, tag = ctx.wire(target), ctx.tag()
        claims = max(1, math.ceil(messages / self.per_chain))
        shares = math.ceil(claims / UNITS_PER_SHARE)
        batch = Batch([], users_prefix=f"o-cr-{tag}-", messages=claims * self.per_chain)
        if target == "bot":
            tokens, batch.seeding = seed_shares(ctx, shares)
        else:
            tokens = [f"bare{i:018d}" for i in range(shares)]  # the length of a real token
        ids: list[int] = []
        for i in range(claims):
            r = f"{batch.users_prefix}{i:06d}"
            token = tokens[(i // UNITS_PER_SHARE) % len(tokens)] if tokens else "none"
            steps = []
            for text, expect in ((f"领取 {token}", "收货人姓名"), *recipient_steps(i)):
                ids.append(ctx.msg_id())
                steps.append(wrk.Step(wire.text_push(r, text, ids[-1]), expect=expect))
            batch.chains.append(wrk.Chain(r, steps))
        batch.msg_ids = (ids[0], ids[-1])
        return batch

    def check(self, ctx: Context, batch: Batch, result: wrk.Result) -> tuple[list[str], dict]:
        problems, facts = check_inbound(ctx, batch, result)
        orders = db_counts(
            ctx.bot.db_url,
            {"orders": ('SELECT COUNT(*) FROM "order" WHERE "recipient_id" LIKE ?',
                        [batch.users_prefix + "%"])},
        )["orders"]  # fmt: skip
        done, final = result.script.get("chains_done", 0), result.script.get("sent_final", 0)
        facts |= {"claims done": done, "orders": orders}
        if orders < done:
            problems.append(f"{done - orders} claims confirmed in chat without an order")
        if orders > final:
            problems.append(f"{orders - final} orders more than final 确认 sent")
        outbox = db_counts(
            ctx.bot.db_url,
            {
                s: ('SELECT COUNT(*) FROM "outbox" WHERE "status" = ?', [s])
                for s in ("sent", "dead")
            },
        )
        facts["outbox sent (all runs)"] = outbox["sent"]
        if outbox["dead"]:
            problems.append(f"{outbox['dead']} outbox rows dead (SMS or notice never sent)")
        return problems, facts


class Page(Scenario):
    name = "page"
    route = "fifo"
    cycle = True
    shares = 20

    def prepare(self, ctx: Context) -> list[str]:
        self.tokens, problems = seed_shares(ctx, self.shares)
        if not self.tokens:
            return problems
        visitor = "o_visit_probe"
        status, page = http_get(
            f"{ctx.bot.url}/claim/{self.tokens[0]}",
            headers={"Cookie": self.cookie(ctx, visitor)},
        )
        if status != 200 or "领取礼物".encode() not in page:
            problems.append(f"the claim page answered {status}: {page[:300]!r}")
        self.page = page
        # The bare handler answers the bot's own page, byte for byte.
        http_post(f"{ctx.bare_url}/_page", page)
        return problems

    @staticmethod
    def cookie(ctx: Context, openid: str) -> str:
        value = tornado.web.create_signed_value(ctx.bot.cookie_secret, "gb_openid", openid)
        return f"gb_openid={value.decode()}"

    def batch(self, ctx: Context, target: str, messages: int) -> Batch:
        wire, tag = ctx.wire(target), ctx.tag()
        visitors = [f"o_visit_{tag}_{i:05d}" for i in range(ctx.users)]
        cookies = [self.cookie(ctx, v) for v in visitors]
        n = max(messages, 2 * ctx.connections)
        chains = []
        for i in range(n):
            path = f"/claim/{self.tokens[i % len(self.tokens)]}"
            request = wire.get(path, cookies[i % len(cookies)])
            chains.append(wrk.Chain(visitors[i % len(visitors)], [wrk.Step(request, "领取礼物")]))
        return Batch(chains, messages=n)

    def check(self, ctx: Context, batch: Batch, result: wrk.Result) -> tuple[list[str], dict]:
        return [], {"pages": result.ok}


SCENARIOS = {s.name: s for s in (Catalogue, FormStep, Claim, Page)}
