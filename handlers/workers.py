"""`python -m bot serve --workers N`: N processes on one port, sharing nothing but the database.

Usage::

    sockets = listen(config)             # handlers/app.py: the port, or CannotListen
    serve_workers(config, 4, sockets)    # returns 0 once SIGTERM stopped them all

The parent migrates and syncs the catalogue once, holds the listening socket, then forks N
workers (pre-fork: the kernel hands each connection to one of them). Each worker has its own
event loop and database connections, and runs the background work too: the outbox
and the sweeps claim their rows with row locks, so no two workers send or release the same
thing. A worker that dies unasked is started again (after a pause, so a crash at start does
not spin); SIGTERM or SIGINT to the parent goes to every worker, and the parent returns when
they have all stopped cleanly. Metrics are counted into a directory every worker shares, so
any worker's /metrics shows the whole server.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time

from bot import metrics
from bot.app import Services, run_loop
from bot.config import Config
from bot.gifting import catalogue
from storage import db as storage

log = logging.getLogger("gift_bot.workers")

RESTART_PAUSE = 1.0  # seconds before a worker that died is started again
PR_SET_PDEATHSIG = 1  # prctl(2)


def serve_workers(config: Config, workers: int, sockets: list[socket.socket]) -> int:
    from handlers.app import serve  # the server itself, in each worker

    storage.connect(config.database.url)
    storage.migrate()
    catalogue.sync(config.gifts)
    storage.db.close()  # no connection crosses a fork
    if not storage.is_postgres():
        log.warning("several workers on SQLite take turns to write: PostgreSQL scales, see README")
    shared = tempfile.mkdtemp(prefix="giftbot-metrics-")
    metrics.use_directory(shared)
    stopping = False
    parent = os.getpid()
    children: dict[int, int] = {}  # pid → worker number

    def start(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _die_with(parent)
            code = 0
            try:
                run_loop(serve(Services.start(config, sync=False), sockets=sockets))
            except BaseException:
                log.exception("worker %d failed", number)
                code = 1
            os._exit(code)
        children[pid] = number

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(workers):
        start(number)
    log.info("workers started", extra={"workers": workers, "port": config.server.port})
    failed = False
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        number = children.pop(pid, None)
        if number is None:
            continue
        if stopping:  # stopped by our SIGTERM: cleanly, or before it had started to serve
            failed |= os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
            continue
        log.error("worker %d exited (%s); starting it again", number, status)
        time.sleep(RESTART_PAUSE)
        if not stopping:
            start(number)
    for sock in sockets:
        sock.close()
    shutil.rmtree(shared, ignore_errors=True)
    log.info("workers stopped")
    return 1 if failed else 0


def _die_with(parent: int) -> None:
    """Linux: this worker gets SIGTERM when the parent dies, even by SIGKILL, so no worker
    outlives its supervisor holding the port and database connections."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(0)
