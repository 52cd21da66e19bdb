"""The command line: `python -m bot COMMAND --config PATH`.

    serve [--workers N]          the bot: callback, pages, background work (N processes)
    worker                       only the background work (outbox, reminders, expiry)
    catalogue sync [--dry-run]   make the gifts table match [[gifts]] (or say what would change)
    catalogue list               stock, reserved and claimed per gift and variant
    menu push                    create the custom menu through the WeChat API
    orders export --format json|csv [--status S]
    orders ship ORDER_NO [--carrier C --tracking T]
    orders deliver ORDER_NO      orders cancel ORDER_NO
    shares list [--status open|claimed|expired|revoked]
    users show OPENID            a person's shares and orders, for support
    outbox list [--status S]     outbox retry ID

Every verb returns an exit code: 0 done, 1 failed (the reason on stderr), 2 bad usage or
config. Listings print readable tables on a terminal and plain JSON with `--format json`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from bot import logs
from bot.app import Services
from bot.config import Config, ConfigError, load
from handlers.cli import catalogue, orders, outbox, people

DEFAULT_CONFIG = "config.toml"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc.key}: {exc.reason}", file=sys.stderr)
        if exc.key == "--config" and args.config == Path(DEFAULT_CONFIG):
            print(START_HINT, file=sys.stderr)
        return 2
    logs.setup(json_lines=not config.server.sandbox)
    return args.run(config, args)


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
        p.set_defaults(run=run)
        return p

    served = verb("serve", serve, "run the bot: the callback, the pages, the background work")
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
    return top


def positive(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, not {text!r}")
    return int(text)


def serve(config: Config, args) -> int:
    if args.workers > 1:
        from handlers.workers import serve_workers

        return serve_workers(config, args.workers)
    from handlers.app import serve as run_server

    asyncio.run(run_server(Services.start(config)))
    return 0


def worker(config: Config, args) -> int:
    services = Services.start(config, sync=False)
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await services.background(stop)
        services.close()

    asyncio.run(run())
    return 0
