"""What the runtime needs to know about one deployed function."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The member of a deploy's placeholder code zip that names the function's real source folder.
PLACEHOLDER_MEMBER = "localcloud-source.json"
# Unreserved functions get this many concurrent execution environments at most.
DEFAULT_MAX_CONCURRENCY = 10


@dataclass(frozen=True)
class FunctionSpec:
    """One function's configuration as deployed; a change in any field means fresh workers."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    environment: tuple[tuple[str, str], ...]
    code_dir: Path
    # Changes whenever the deployed code changes (moto's CodeSha256).
    code_token: str
    reserved_concurrency: int | None = None
    role: str = field(default="", compare=False)
    # The function's layers, in order: the folders Lambda would put on sys.path (/opt/python).
    layer_paths: tuple[Path, ...] = ()

    @property
    def max_concurrency(self) -> int:
        """How many execution environments may run at once."""
        if self.reserved_concurrency is None:
            return DEFAULT_MAX_CONCURRENCY
        return self.reserved_concurrency

    @property
    def log_group_name(self) -> str:
        """Lambda's log group for the function."""
        return f"/aws/lambda/{self.name}"
