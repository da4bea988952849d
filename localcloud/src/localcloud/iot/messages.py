"""The message every part of local IoT Core passes around: what was published, where, by whom."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final


class _Undefined:
    """IoT SQL's *Undefined*: a field that is absent, or a value an operator cannot produce."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()

# AWS IoT Core's payload limit for MQTT and HTTP publishes.
MAX_PAYLOAD_BYTES = 128 * 1024


@dataclass(frozen=True)
class IotMessage:
    """One published message, as the rules engine sees it.

    ``client_id`` is the MQTT client id of the publisher, empty for data-plane (HTTP) publishes.
    ``timestamp_ms`` is when the broker accepted it (IoT SQL's ``timestamp()``).
    """

    topic: str
    payload: bytes
    timestamp_ms: int
    qos: int = 0
    retain: bool = False
    client_id: str = ""
    principal: str = ""
    trace_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @cached_property
    def document(self) -> Any:
        """The payload parsed as JSON, or :data:`UNDEFINED` when it is not JSON (binary payloads)."""
        try:
            return json.loads(self.payload)
        except (ValueError, UnicodeDecodeError):
            return UNDEFINED
