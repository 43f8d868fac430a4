"""`seqapp serve` started as a user starts it, on a free port of this machine, for the serve benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(*flags: str):
    """The server's port, once it answers; the server stops when the block ends."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "seqapp", "serve", "--port", str(port), *flags], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(300):
            if server.poll() is not None:
                sys.exit(f"seqapp serve stopped (exit {server.returncode})")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)
