"""`seqapp serve` started as a user starts it, in its own process on a free port of this machine: what the browser
tests and the serve benchmarks talk to."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(*flags: str, wait_s: float = 30.0):
    """The server's port once it answers; the server stops when the block ends. If it stops first (a bad flag,
    a missing model), RuntimeError with the last line it wrote."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a busy server's log never blocks it
        server = subprocess.Popen([sys.executable, "-m", "seqapp", "serve", "--port", str(port), *flags], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=log, text=True)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    last = (log.read().strip().splitlines() or [""])[-1]
                    raise RuntimeError(f"seqapp serve stopped (exit {server.returncode}): {last}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"seqapp serve did not answer on port {port} in {wait_s:.0f} s") from None
                    time.sleep(0.1)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=10)
