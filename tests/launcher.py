"""`python -m bot …` for the tests, without paying for Python's imports at every call.

An operator's command starts a new process that spends ~0.6 s importing the bot before it does
anything; the suite runs a few hundred of them. This module keeps one process per test worker
that has imported what `python -m bot` imports (`handlers.cli`) and nothing else: no database
opened, no thread, no logging set up. Each command is a child forked from it, on the caller's
stdin, stdout and stderr (passed over a Unix socket), in the caller's working directory and
environment, running `handlers.cli.main(argv)` as `bot/__main__.py` does; its exit code comes
back as the process's own would. What the child does — connect, migrate, print, exit — is what
`python -m bot` does; only the imports were done once, before. The command line's own start
(`python -m bot --help`, a missing config, `serve`) is still tested in real subprocesses.

    run(["orders", "ship", "NO", "--config", path], cwd=folder)   # a CompletedProcess
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_server: list[tuple[subprocess.Popen, str]] = []  # this test process's launcher, once started


def run(
    argv: list[str], cwd, timeout: float = 60, text: bool = True
) -> subprocess.CompletedProcess:
    """`python -m bot *argv` in `cwd`, as `subprocess.run(..., capture_output=True)` gives it."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        open(os.devnull, "rb") as stdin,
        socket.socket(socket.AF_UNIX) as conn,
    ):
        conn.connect(_address())
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": dict(os.environ)})
        socket.send_fds(conn, [request.encode()], [stdin.fileno(), out.fileno(), err.fileno()])
        conn.settimeout(timeout)
        answer = conn.makefile("r")
        pid = int(answer.readline())
        try:
            said = answer.readline()
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(["python", "-m", "bot", *argv], timeout) from None
        if not said:
            raise RuntimeError(f"`python -m bot {' '.join(argv)}` died without an exit code")
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if text:  # as subprocess's text mode reads them: UTF-8, universal newlines
        stdout, stderr = (_text(stdout), _text(stderr))
    return subprocess.CompletedProcess(["python", "-m", "bot", *argv], int(said), stdout, stderr)


def _text(data: bytes) -> str:
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


def _address() -> str:
    if not _server:
        folder = tempfile.mkdtemp(prefix="giftbot-launcher-")
        address = os.path.join(folder, "socket")
        server = subprocess.Popen(  # its stdin ends with this process, however it ends
            [sys.executable, __file__, address], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the launcher did not start: see its stderr above")
        _server.append((server, address))
        atexit.register(server.kill)
    return _server[0][1]


# -- the launcher's own process ------------------------------------------------------------


def serve(address: str) -> None:
    import handlers.cli  # noqa: F401  what `python -m bot` imports, once

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished commands
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(address)
        listener.listen(16)
        print("ready", flush=True)
        while True:
            ready, _, _ = select.select([listener, sys.stdin], [], [])
            if sys.stdin in ready:  # the test process is gone (its end of the pipe closed)
                return
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                os._exit(_command(conn))
            conn.close()


def _command(conn: socket.socket) -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # `serve --workers N` waits for its own
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(message)
    for fd, target in zip(fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-m", *request["argv"]]
    conn.sendall(f"{os.getpid()}\n".encode())
    code = _main(request["argv"])
    conn.sendall(f"{code}\n".encode())
    return code


def _main(argv: list[str]) -> int:
    from handlers.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors, as the interpreter would end
        code = exit_.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    return 0 if code is None else code


if __name__ == "__main__":
    sys.path.remove(str(Path(__file__).parent))  # the tests' modules are not the bot's
    serve(sys.argv[1])
