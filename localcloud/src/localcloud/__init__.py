"""localcloud: run any AWS SAM template on one machine, with no AWS account and no Docker.

moto serves the AWS APIs on one local endpoint; localcloud deploys templates into moto's
CloudFormation, runs Lambda handlers in warm worker processes, and drives the triggers moto does
not (event source mappings, SNS / S3 / schedule invocations). See README.md in this package.

The names below are imported lazily: importing moto takes seconds, and modules such as
``localcloud.invocation`` must stay cheap to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcloud.cloud import LocalCloud
    from localcloud.deploy import DeployError, DeployResult, FunctionSource, SkippedResource
    from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError
    from localcloud.persistence import IncompatibleStateError
    from localcloud.runtime import LambdaRuntime

_EXPORTS = {
    "LocalCloud": "localcloud.cloud",
    "DeployError": "localcloud.deploy",
    "DeployResult": "localcloud.deploy",
    "FunctionSource": "localcloud.deploy",
    "SkippedResource": "localcloud.deploy",
    "FunctionNotFoundError": "localcloud.invocation",
    "InvocationResult": "localcloud.invocation",
    "Invoker": "localcloud.invocation",
    "TooManyRequestsError": "localcloud.invocation",
    "LambdaRuntime": "localcloud.runtime",
    "IncompatibleStateError": "localcloud.persistence",
}

__all__ = [
    "DeployError",
    "DeployResult",
    "FunctionNotFoundError",
    "FunctionSource",
    "IncompatibleStateError",
    "InvocationResult",
    "Invoker",
    "LambdaRuntime",
    "LocalCloud",
    "SkippedResource",
    "TooManyRequestsError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localcloud' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
