"""The two official Python tracking SDKs, built the way an app would build them.

``segment-analytics-python`` (``segment.analytics``) and ``rudder-sdk-python``
(``rudderstack.analytics``) both batch on a background thread and POST ``/v1/batch``.
What each retries (read from the installed sources):

* Segment 2.4.0: 408/410/429/460 and every 5xx but 501/505, and network errors. The
  first retry is immediate, then 0.5 s, 1 s, 2 s... A retryable answer that carries
  ``Retry-After`` puts the batch back on the queue and waits that long instead. Every
  retry carries ``X-Retry-Count``. Success is any 2xx.
* RudderStack 2.1.9: everything but a 4xx other than 429 (so 5xx and network errors),
  with ``backoff.expo`` and full jitter; ``Retry-After`` is ignored. Success is exactly
  200. Gzip is on by default.

Importing ``rudderstack.analytics`` runs ``load_dotenv()``, which reads a ``.env`` found
above the SDK's files (or in the working directory under a debugger or coverage) into
``os.environ``; :func:`rudder_client_class` undoes that so no test depends on a ``.env``.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

SDKS = ("segment", "rudder")
TYPES = ("track", "identify", "page", "screen", "group", "alias")


class SdkClient(Protocol):
    def track(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def identify(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def page(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def screen(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def group(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def alias(self, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]: ...
    def flush(self) -> None: ...
    def shutdown(self) -> None: ...


_import_lock = threading.Lock()


def rudder_client_class() -> type:
    """``rudderstack.analytics.Client``, imported without leaking a ``.env`` into the tests."""
    with _import_lock:
        before = dict(os.environ)
        try:
            from rudderstack.analytics import Client
        finally:
            os.environ.clear()
            os.environ.update(before)
    return Client


class Errors:
    """Collects what an SDK reports through ``on_error`` (a batch it gave up on)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self.items.append((repr(error), len(batch)))


def make_client(
    sdk: str,
    write_key: str,
    host: str,
    *,
    gzip: bool,
    upload_size: int = 100,
    max_retries: int = 10,
    on_error: Errors | None = None,
) -> SdkClient:
    """A client in its normal (batching, background-thread) mode."""
    if sdk == "segment":
        from segment.analytics import Client as SegmentClient

        return SegmentClient(
            write_key,
            host=host,
            gzip=gzip,
            upload_size=upload_size,
            max_retries=max_retries,
            timeout=10,
            on_error=on_error,
            max_total_backoff_duration=60,
            max_rate_limit_duration=60,
        )
    if sdk == "rudder":
        rudder = rudder_client_class()
        return rudder(
            write_key,
            host=host,
            gzip=gzip,
            upload_size=upload_size,
            max_retries=max_retries,
            timeout=10,
            on_error=on_error,
        )
    raise ValueError(sdk)


def send_mix(client: SdkClient, n: int, run: str) -> dict[str, dict[str, Any]]:
    """Send ``n`` messages cycling through the six calls; returns what each should store,
    by the messageId the SDK gave it."""
    expected: dict[str, dict[str, Any]] = {}
    for i in range(n):
        kind = TYPES[i % len(TYPES)]
        user = f"user-{run}-{i % 17}"
        want: dict[str, Any] = {"type": kind, "user_id": user}
        if kind == "track":
            ok, msg = client.track(user, "Order Completed", {"order_id": f"o-{i}", "revenue": i / 4})
            want["event"] = "Order Completed"
        elif kind == "identify":
            ok, msg = client.identify(user, {"email": f"{user}@example.com", "plan": "pro"})
        elif kind == "page":
            ok, msg = client.page(user, "Docs", f"Page {i}", {"path": f"/docs/{i}"})
            want["name"] = f"Page {i}"
        elif kind == "screen":
            ok, msg = client.screen(user, "App", f"Screen {i}", {"build": i})
            want["name"] = f"Screen {i}"
        elif kind == "group":
            ok, msg = client.group(user, f"org-{i % 5}", {"name": f"Org {i % 5}"})
            want["group_id"] = f"org-{i % 5}"
        else:
            ok, msg = client.alias(f"anon-{run}-{i}", user)
            want["previous_id"] = f"anon-{run}-{i}"
        assert ok, f"the SDK's queue refused message {i}"
        expected[msg["messageId"]] = want
    return expected
