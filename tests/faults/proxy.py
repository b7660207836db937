"""A small fault-injecting HTTP/1.1 proxy for tests, on 127.0.0.1.

It sits between a real client (an SDK) and a real ``patron serve``. For every request it
asks a *plan* what to do:

* ``FORWARD``: pass the request to the server and its answer back to the client;
* ``FORWARD_THEN_503``: pass the request to the server (so it is stored), throw the
  server's answer away and tell the client ``503`` instead: the client must retry a batch
  the server already has;
* ``FORWARD_THEN_503_RETRY_AFTER``: the same, with ``Retry-After: 1`` on the 503;
* ``FORWARD_THEN_DROP``: pass the request on, then close the client's connection without
  any answer (a lost response);
* ``DROP``: close the client's connection without forwarding anything (a lost request).

Every request is recorded (its action, the server's status, ``X-Retry-Count`` and the
``messageId``s of the batch), so a test can prove that retries really happened.

The proxy runs its own asyncio loop in a daemon thread. It speaks just enough HTTP for
the requests library: a request line, headers, and a ``Content-Length`` body, with
keep-alive towards the client and one fresh connection to the server per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Action(Enum):
    FORWARD = "forward"
    FORWARD_THEN_503 = "forward_then_503"
    FORWARD_THEN_503_RETRY_AFTER = "forward_then_503_retry_after"
    FORWARD_THEN_DROP = "forward_then_drop"
    DROP = "drop"


@dataclass
class Exchange:
    """One request the proxy saw."""

    number: int
    method: str
    path: str
    headers: dict[str, str]
    action: Action
    message_ids: list[str]
    upstream_status: int | None = None
    upstream_body: dict[str, Any] | None = None
    client_status: int | None = None

    @property
    def retry_count(self) -> int:
        return int(self.headers.get("x-retry-count", "0") or 0)

    @property
    def forwarded(self) -> bool:
        return self.action is not Action.DROP


Plan = Callable[[int, str], Action]
"""Chooses the action from the request's number (1-based) and path."""


def faults_at(numbers: dict[int, Action]) -> Plan:
    """A plan that injects the given faults at the given request numbers."""

    def plan(number: int, _path: str) -> Action:
        return numbers.get(number, Action.FORWARD)

    return plan


@dataclass
class FaultProxy:
    """Start with ``with FaultProxy(upstream_port, plan) as proxy:``; send to ``proxy.url``."""

    upstream_port: int
    plan: Plan = field(default=lambda _n, _p: Action.FORWARD)
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._lock = threading.Lock()
        self._count = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        server = self._server

        async def close() -> None:
            if server is not None:
                server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if server is not None:
                await server.wait_closed()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened ---------------------------------------------------------------

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def sent_counts(self) -> dict[str, int]:
        """How many times each messageId reached the proxy."""
        counts: dict[str, int] = {}
        for exchange in self.snapshot():
            for message_id in exchange.message_ids:
                counts[message_id] = counts.get(message_id, 0) + 1
        return counts

    # -- the proxy -------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                head, body = request
                method, path, headers = _parse_head(head)
                with self._lock:
                    self._count += 1
                    number = self._count
                action = self.plan(number, path)
                exchange = Exchange(number, method, path, headers, action, _message_ids(headers, body))
                with self._lock:
                    self.exchanges.append(exchange)
                if action is Action.DROP:
                    return
                status, response = await self._forward(head, body)
                exchange.upstream_status = status
                exchange.upstream_body = _json_body(response)
                if action is Action.FORWARD_THEN_DROP:
                    return
                if action in (Action.FORWARD_THEN_503, Action.FORWARD_THEN_503_RETRY_AFTER):
                    extra = "Retry-After: 1\r\n" if action is Action.FORWARD_THEN_503_RETRY_AFTER else ""
                    payload = json.dumps(
                        {
                            "success": False,
                            "code": "injected_fault",
                            "message": "fault injected by the test proxy",
                        }
                    ).encode()
                    response = (
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                        + extra.encode()
                        + f"content-length: {len(payload)}\r\n\r\n".encode()
                        + payload
                    )
                    status = 503
                exchange.client_status = status
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            await _close(writer)

    async def _forward(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            lines = head.split(b"\r\n")
            kept = [lines[0]] + [
                line for line in lines[1:] if line and not line.lower().startswith(b"connection:")
            ]
            writer.write(b"\r\n".join(kept) + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
            response = await reader.read()  # the server closes after answering
        finally:
            await _close(writer)
        status = int(response.split(b" ", 2)[1])
        # Hand the answer back as a keep-alive response with an explicit length.
        resp_head, _, resp_body = response.partition(b"\r\n\r\n")
        resp_lines = [
            line
            for line in resp_head.split(b"\r\n")
            if not line.lower().startswith((b"connection:", b"content-length:", b"transfer-encoding:"))
        ]
        rebuilt = b"\r\n".join(resp_lines) + f"\r\ncontent-length: {len(resp_body)}\r\n\r\n".encode()
        return status, rebuilt + resp_body


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    head = head[:-4]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise AssertionError("the test proxy does not support chunked request bodies")
    body = await reader.readexactly(length) if length else b""
    return head, body


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _json_body(response: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(response.partition(b"\r\n\r\n")[2])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _message_ids(headers: dict[str, str], body: bytes) -> list[str]:
    try:
        if headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        payload: Any = json.loads(body) if body else None
    except (OSError, ValueError):
        return []
    if isinstance(payload, dict) and isinstance(payload.get("batch"), list):
        return [str(m.get("messageId")) for m in payload["batch"] if isinstance(m, dict)]
    if isinstance(payload, dict) and "messageId" in payload:
        return [payload["messageId"]]
    return []
