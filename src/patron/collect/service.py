"""Turns decoded request bodies into event rows and rejections, ready for the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from patron.collect.exceptions import InvalidMessage, InvalidPayload
from patron.collect.jsonkinds import json_kind
from patron.collect.spec import (
    EventRow,
    MessageValidator,
    Rejection,
    rejections_to_table,
)
from patron.config import Settings


@dataclass
class Prepared:
    """Validated messages of one request or import chunk."""

    source_id: str
    received_at: datetime
    rows: list[EventRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def failed_table(self) -> pa.Table | None:
        if not self.rejections:
            return None
        return rejections_to_table(self.rejections, self.source_id, self.received_at)


class Collector:
    """Applies the tracking spec to single messages and batches."""

    def __init__(self, settings: Settings, validator: MessageValidator | None = None) -> None:
        self.settings = settings
        self.validator = validator or MessageValidator(
            max_message_bytes=settings.max_message_bytes, max_future=settings.max_future
        )

    def single(
        self, payload: Any, kind: str, *, source_id: str, received_at: datetime
    ) -> Prepared:
        """One message from ``/v1/<kind>``. Its rejection is kept too (see :meth:`raise_if_rejected`)."""
        if not isinstance(payload, dict):
            raise InvalidPayload(f"the body must be a JSON object, got {json_kind(payload)}")
        payload.pop("writeKey", None)
        prepared = Prepared(source_id, received_at)
        self._add(prepared, payload, None, kind, None, None)
        return prepared

    def batch(self, payload: Any, *, source_id: str, received_at: datetime) -> Prepared:
        """A ``/v1/batch`` body: ``{"batch": [...], "context"?, "sentAt"?, "writeKey"?}``."""
        if not isinstance(payload, dict):
            raise InvalidPayload(
                f"the body must be a JSON object with a batch array, got {json_kind(payload)}",
                field="batch",
            )
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise InvalidPayload(
                "batch is required and must be an array of messages", field="batch"
            )
        context = payload.get("context")
        if context is not None and not isinstance(context, dict):
            raise InvalidPayload(f"context must be an object, got {json_kind(context)}", field="context")
        sent_at = payload.get("sentAt")
        prepared = Prepared(source_id, received_at)
        # The hot path of /v1/batch: one call per message, no per-message keyword passing.
        check = self.validator.check
        rows = prepared.rows
        rejections = prepared.rejections
        for index, message in enumerate(messages):
            outcome = check(
                message,
                source_id=source_id,
                received_at=received_at,
                index=index,
                batch_context=context,
                batch_sent_at=sent_at,
            )
            if type(outcome) is Rejection:
                rejections.append(outcome)
            else:
                rows.append(outcome)  # type: ignore[arg-type]
        return prepared

    def _add(
        self,
        prepared: Prepared,
        message: Any,
        index: int | None,
        kind: str | None,
        context: dict[str, Any] | None,
        sent_at: Any,
    ) -> None:
        outcome = self.validator.check(
            message,
            source_id=prepared.source_id,
            received_at=prepared.received_at,
            index=index,
            type_hint=kind,
            batch_context=context,
            batch_sent_at=sent_at,
        )
        if isinstance(outcome, Rejection):
            prepared.rejections.append(outcome)
        else:
            prepared.rows.append(outcome)


def raise_if_rejected(prepared: Prepared) -> None:
    """For single-message calls: the rejection becomes the request's error."""
    if prepared.rejections:
        first = prepared.rejections[0]
        raise InvalidMessage(first.field, first.reason)
