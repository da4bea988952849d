"""Looking up deployed functions in moto's Lambda backend and finding their code on disk."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from localcloud.aws import ACCOUNT_ID
from localcloud.invocation import FunctionNotFoundError
from localcloud.runtime.spec import PLACEHOLDER_MEMBER, FunctionSpec


class FunctionCatalog:
    """Turns a function name or ARN into a :class:`FunctionSpec` from moto's current configuration.

    Source folders registered by the deployer win; a function created any other way (inline
    ZipFile code, or a real zip through the Lambda API) runs from its zip, unpacked once under
    ``unpack_dir``.
    """

    def __init__(self, region: str, unpack_dir: Path) -> None:
        self.region = region
        self._unpack_dir = unpack_dir
        self._code_dirs: dict[str, Path] = {}
        self._lock = threading.Lock()

    def register_code_dirs(self, code_dirs: Iterable[tuple[str, Path]]) -> None:
        """Remember where functions' handlers live (function name → folder)."""
        with self._lock:
            self._code_dirs.update(code_dirs)

    def lookup(self, function: str) -> FunctionSpec:
        """The current spec of ``function`` (name, ARN or qualified ARN)."""
        # Imported here so that the runtime package stays cheap to import.
        from moto.awslambda.models import lambda_backends  # noqa: PLC0415

        region = self.region
        if function.startswith("arn:"):
            region = function.split(":")[3]
        backend = lambda_backends[ACCOUNT_ID][region]
        try:
            fn = backend.get_function(function)
        except Exception as exc:  # moto raises its own UnknownFunctionException
            raise FunctionNotFoundError(function) from exc
        layers = getattr(fn, "layers", None) or ()
        return FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            handler=fn.handler or "index.handler",
            runtime=fn.run_time or "python3.11",
            timeout_s=float(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            environment=tuple(sorted((str(k), str(v)) for k, v in (fn.environment_vars or {}).items())),
            code_dir=self._code_dir(fn),
            code_token=str(getattr(fn, "code_sha_256", "")),
            reserved_concurrency=_int_or_none(getattr(fn, "reserved_concurrency", None)),
            role=str(fn.role or ""),
            layer_paths=tuple(self._layer_path(backend, layer) for layer in layers),
        )

    def _layer_path(self, backend: Any, layer: Any) -> Path:
        """The folder one of a function's layers contributes to ``sys.path``."""
        arn = layer.get("Arn", "") if isinstance(layer, dict) else str(layer)
        version = backend.layers_versions_by_arn(arn)
        code_bytes: bytes = getattr(version, "code_bytes", b"") or b""
        recorded = _placeholder_record(code_bytes)
        if recorded is not None:
            return Path(recorded.get("python_path") or Path(recorded["code_dir"]) / "python")
        # A real layer zip: unpacked once, like Lambda's /opt, whose python/ folder is importable.
        target = (
            self._unpack_dir
            / "layers"
            / (str(getattr(version, "code_sha_256", "")) or arn).replace("/", "_").replace(":", "_")
        )
        if not target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            if code_bytes:
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                    archive.extractall(target)
        return target / "python"

    def _code_dir(self, fn: Any) -> Path:
        with self._lock:
            registered = self._code_dirs.get(fn.function_name)
        if registered is not None:
            return registered
        code_bytes: bytes = getattr(fn, "code_bytes", b"") or b""
        placeholder = _placeholder_source(code_bytes)
        if placeholder is not None:
            return placeholder
        target = self._unpack_dir / (str(getattr(fn, "code_sha_256", "")) or fn.function_name).replace(
            "/", "_"
        )
        if not target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            if code_bytes:
                with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
                    archive.extractall(target)
        return target


def _placeholder_record(code_bytes: bytes) -> dict[str, str] | None:
    """What a deploy recorded in its placeholder zip (source folder, ...), if this is one."""
    if not code_bytes:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
            if PLACEHOLDER_MEMBER not in archive.namelist():
                return None
            recorded: dict[str, str] = json.loads(archive.read(PLACEHOLDER_MEMBER))
    except (zipfile.BadZipFile, ValueError):
        return None
    return recorded


def _placeholder_source(code_bytes: bytes) -> Path | None:
    """The source folder a deploy recorded in its placeholder zip, if this is one."""
    recorded = _placeholder_record(code_bytes)
    return Path(recorded["code_dir"]) if recorded is not None else None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)
