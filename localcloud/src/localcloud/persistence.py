"""Keeping moto's state across restarts: every in-use backend pickled into the state folder.

All backends go into one pickle so objects shared between services (a CloudFormation stack's
resource map holds the very stream object Kinesis serves) stay shared after a restore. Locks are
not picklable; they are recreated fresh.

A pickle of moto's objects can only be read back by the same moto (its classes change between
releases), so a manifest beside it records the state format, moto and Python versions; a state
folder written by anything else is refused with :class:`IncompatibleStateError`, never unpickled.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import sys
import threading
import typing
import weakref
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
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
MANIFEST_FILE = "state.json"
# Bump when what the state folder holds changes shape (files, their formats, the manifest).
STATE_FORMAT = 1
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


class IncompatibleStateError(RuntimeError):
    """A state folder written by another state format, moto or Python: it cannot be restored."""


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def state_fingerprint() -> dict[str, Any]:
    """What a saved state depends on: the state format and the versions that wrote it."""
    return {
        "format": STATE_FORMAT,
        "moto": _package_version("moto"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "localcloud": _package_version("localcloud"),
    }


# The fields that must match for a restore; localcloud's own version is recorded for the reader.
_MUST_MATCH = ("format", "moto", "python")


def _describe(fingerprint: dict[str, Any]) -> str:
    return (
        f"state format {fingerprint.get('format', '?')}, moto {fingerprint.get('moto', '?')}, "
        f"Python {fingerprint.get('python', '?')}"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def reset_moto() -> None:
    """Forget everything moto holds in this process."""
    moto_api_backend.reset()


class StateStore:
    """Saves and restores moto's backends under ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE
        self.manifest_path = state_dir / MANIFEST_FILE

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
        # The manifest goes first: a crash between the two writes leaves a manifest that describes
        # this process, and a pickle written by this very process or by the same versions before.
        _write_atomically(self.manifest_path, json.dumps(state_fingerprint(), indent=2).encode())
        _write_atomically(self.path, buffer.getvalue())
        return len(buffer.getvalue())

    def check_compatible(self) -> None:
        """Raise :class:`IncompatibleStateError` unless this process can restore the saved state."""
        remedy = f"start without saved state (--no-state), or remove {self.state_dir} to start afresh"
        try:
            saved = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise IncompatibleStateError(
                f"the state in {self.state_dir} has no {MANIFEST_FILE}: it was saved by an older "
                f"localcloud and cannot be restored; {remedy}"
            ) from None
        except (OSError, ValueError) as exc:
            raise IncompatibleStateError(f"{self.manifest_path} is unreadable ({exc}); {remedy}") from exc
        current = state_fingerprint()
        if not isinstance(saved, dict) or any(saved.get(key) != current[key] for key in _MUST_MATCH):
            described = _describe(saved) if isinstance(saved, dict) else repr(saved)
            raise IncompatibleStateError(
                f"the state in {self.state_dir} was saved with {described}; this localcloud runs "
                f"{_describe(current)}, which cannot read it; {remedy}"
            )

    def load(self) -> bool:
        """Install the saved backends into moto; False when there is nothing saved."""
        if not self.path.exists():
            return False
        self.check_compatible()
        try:
            with self.path.open("rb") as handle:
                snapshot: dict[str, dict[str, dict[str, Any]]] = pickle.load(handle)
        except Exception as exc:  # a truncated or damaged file: any unpickling error may surface
            raise IncompatibleStateError(
                f"{self.path} cannot be read ({type(exc).__name__}: {exc}); start without saved "
                f"state (--no-state), or remove {self.state_dir} to start afresh"
            ) from exc
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
