"""Keeping moto's state across restarts: every in-use backend pickled into the state folder.

All backends go into one pickle so objects shared between services (a CloudFormation stack's
resource map holds the very stream object Kinesis serves) stay shared after a restore. Locks are
not picklable; they are recreated fresh.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import threading
import typing
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from moto.backends import get_backend
from moto.core.base_backend import BackendDict
from moto.moto_api._internal.models import moto_api_backend

LOG = logging.getLogger(__name__)

STATE_FILE = "moto-state.pickle"
_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPE = type(threading.Lock())


_PRIVATE_KEY_CLASSES = typing.get_args(PrivateKeyTypes)


def _load_private_key(pem: bytes) -> Any:
    # A module-level function: cryptography's own loader is a native builtin pickle cannot name.
    return load_pem_private_key(pem, None)


class _StatePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is _RLOCK_TYPE:
            return (threading.RLock, ())
        if type(obj) is _LOCK_TYPE:
            return (threading.Lock, ())
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            # moto builds some defaultdicts with `lambda: {}`; store the factory as the type it makes.
            sample = obj.default_factory()  # type: ignore[misc]
            factory = type(sample) if type(sample) in (dict, list, set, int, str) else None
            return (defaultdict, (factory,), None, None, iter(obj.items()))
        if isinstance(obj, weakref.WeakValueDictionary):
            return (weakref.WeakValueDictionary, (dict(obj.items()),))
        if isinstance(obj, weakref.WeakKeyDictionary):
            return (weakref.WeakKeyDictionary, (dict(obj.items()),))
        if isinstance(obj, _PRIVATE_KEY_CLASSES):
            # moto keeps real keys (SNS signing, KMS, IoT certificates); cryptography's key objects do
            # not pickle, their PEM form does.
            pem = obj.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            return (_load_private_key, (pem,))
        return NotImplemented


def reset_moto() -> None:
    """Forget everything moto holds in this process."""
    moto_api_backend.reset()


class StateStore:
    """Saves and restores moto's backends under ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE

    def save(self) -> int:
        """Write the state atomically; returns the number of bytes written."""
        snapshot: dict[str, dict[str, dict[str, Any]]] = {}
        instances: list[Any] = list(BackendDict._instances)  # type: ignore[misc]
        for backend_dict in instances:
            accounts = {
                account: dict(regions.items()) for account, regions in backend_dict.items() if len(regions)
            }
            if accounts:
                snapshot[backend_dict.service_name] = accounts
        buffer = io.BytesIO()
        _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(snapshot)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, self.path)
        return len(buffer.getvalue())

    def load(self) -> bool:
        """Install the saved backends into moto; False when there is nothing saved."""
        if not self.path.exists():
            return False
        with self.path.open("rb") as handle:
            snapshot: dict[str, dict[str, dict[str, Any]]] = pickle.load(handle)
        for service_name, accounts in snapshot.items():
            try:
                backend_dict: Any = get_backend(service_name)  # type: ignore[call-overload]
            except Exception:
                LOG.warning("saved state for unknown moto service %s ignored", service_name)
                continue
            for account, regions in accounts.items():
                account_backends = backend_dict[account]
                for region, backend in regions.items():
                    # Bypass the lazy constructor: the restored backend replaces any fresh one.
                    dict.__setitem__(account_backends, region, backend)
        return True
