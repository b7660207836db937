"""A real `patron serve` process on 127.0.0.1, for tests that need the HTTP server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def patron_command(*args: str) -> list[str]:
    """The installed CLI, run with this interpreter (works inside and outside a venv)."""
    return [sys.executable, "-c", "from patron.cli.main import main; main()", *args]


class PatronServer:
    """`patron serve` in a subprocess; ``url`` is its base address."""

    def __init__(
        self,
        store: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        log: Path | None = None,
    ) -> None:
        self.store = store
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.preexec_fn = preexec_fn
        self.log = log or store.with_suffix(f".{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PatronServer:
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            patron_command("serve", "--store", str(self.store), "--port", str(self.port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"patron serve exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code in (200, 503):
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"patron serve did not answer within {timeout}s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else 0

    def __enter__(self) -> PatronServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
