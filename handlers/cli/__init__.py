"""The command line: `python -m bot COMMAND --config PATH`.

    serve [--port P] [--workers N]   the bot: callback, pages, background work (N processes)
    worker                       only the background work (outbox, reminders, expiry)
    catalogue sync [--dry-run]   make the gifts table match [[gifts]] (or say what would change)
    catalogue list               stock, reserved and claimed per gift and variant
    menu push                    create the custom menu through the WeChat API
    orders export --format json|csv [--status S]
    orders ship ORDER_NO (--carrier C --tracking T | --no-tracking)   a shipped one: corrected
    orders ship --from FILE      every row of a courier's CSV (order_no,carrier,tracking)
    orders deliver ORDER_NO      orders cancel ORDER_NO
    report [--since D] [--until D] (--out FILE.html | --format json)   how the campaign went
    shares list [--status S]     unpaid|open|drawing|drawn|claimed|expired|revoked|lapsed
    users show OPENID            a person's shares and orders, for support
    outbox list [--status S]     outbox retry ID
    payments list                payment attempts and refunds, with their states
    payments balance             paid = claimed + refunded + open, per share and overall

Every verb returns an exit code: 0 done, 1 failed (the reason on stderr), 2 bad usage or
config. Listings print readable tables on a terminal and plain JSON with `--format json`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import bot.money.payments  # noqa: F401  money's side of a share's moves (life.keep_books)
from bot import logs
from bot.config import Config, ConfigError, load, port_mismatch, with_port
from bot.config.startup import check_database
from handlers.cli import catalogue, orders, outbox, payments, people, report

log = logging.getLogger("gift_bot.cli")

DEFAULT_CONFIG = "config.toml"


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    try:
        config = load(args.config)
        if getattr(args, "port", None):
            config = with_port(config, args.port)
        check_database(config.database)
    except ConfigError as exc:
        print(f"config error: {exc.key}: {exc.reason}", file=sys.stderr)
        if exc.key == "--config" and args.config == Path(DEFAULT_CONFIG):
            print(START_HINT, file=sys.stderr)
        return 2
    logs.setup(json_lines=not config.server.sandbox)
    try:
        code = args.run(config, args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`orders export | head`): what it wanted it has. Python would
        # still flush stdout at exit and fail again, so stdout goes nowhere from here on.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def parse(top: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments; an option no command knows is refused with that command's own usage
    (argparse would show the top level's, which names no option of the command)."""
    args, unknown = top.parse_known_args(argv)
    if unknown:
        getattr(args, "parser", top).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


START_HINT = (
    "To start: cp config.example.toml config.toml (then edit it), "
    "or pass --config config.example.toml to try the example as it is."
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bot", description="gift-bot")
    top.add_argument("--config", default=DEFAULT_CONFIG, type=Path, help="config file (TOML)")
    verbs = top.add_subparsers(required=True, metavar="COMMAND")

    def verb(name, run, help, parent=verbs):
        p = parent.add_parser(name, help=help, description=help)
        p.add_argument("--config", default=argparse.SUPPRESS, type=Path, help="config file (TOML)")
        p.set_defaults(run=run, parser=p)
        return p

    served = verb("serve", serve, "run the bot: the callback, the pages, the background work")
    served.epilog = (
        "It listens on [server] host and port of the config and builds every link on "
        "[server] public_url. A port that is taken stops it with exit code 2."
    )
    served.add_argument(
        "--port",
        type=port_number,
        metavar="P",
        help="listen on port P instead of [server] port; a loopback public_url follows it "
        "(make run PORT=P)",
    )
    served.add_argument(
        "--workers",
        type=positive,
        default=1,
        metavar="N",
        help="processes on the one port (default 1; more than 1 wants PostgreSQL)",
    )
    verb("worker", worker, "run only the background work: outbox, reminders, expiry")
    catalogue.verbs(verb, verbs)
    orders.verbs(verb, verbs)
    people.verbs(verb, verbs)
    outbox.verbs(verb, verbs)
    payments.verbs(verb, verbs)
    report.verbs(verb, verbs)
    return top


def positive(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return int(text)


def port_number(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def serve(config: Config, args) -> int:
    from bot.app import Services, run_loop  # the whole bot: only the commands that run it import it
    from handlers.app import CannotListen, listen
    from handlers.app import serve as run_server

    if mismatch := port_mismatch(config.server):  # the sandbox refuses it in config already
        log.warning(f"{mismatch}: links in replies and pages will not reach this server")
    try:
        sockets = listen(config)
    except CannotListen as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        from handlers.workers import serve_workers

        return serve_workers(config, args.workers, sockets)
    run_loop(run_server(Services.start(config), sockets=sockets))
    return 0


def worker(config: Config, args) -> int:
    from bot.app import Services, run_loop, settle_heap

    services = Services.start(config, sync=False)
    settle_heap()
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await services.background(stop)
        services.close()

    run_loop(run())
    return 0
