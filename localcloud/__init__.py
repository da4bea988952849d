"""localcloud: run any AWS SAM template on one machine, with no AWS account and no Docker.

moto serves the AWS APIs on one local endpoint; localcloud deploys templates into moto's
CloudFormation, runs Lambda handlers in warm worker processes, and drives the triggers moto does
not (event source mappings, SNS / S3 / schedule invocations). See README.md in this package.
"""

from localcloud.cloud import LocalCloud
from localcloud.deploy import DeployError, DeployResult, FunctionSource, SkippedResource
from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError
from localcloud.runtime import LambdaRuntime

__all__ = [
    "DeployError",
    "DeployResult",
    "FunctionNotFoundError",
    "FunctionSource",
    "InvocationResult",
    "Invoker",
    "LambdaRuntime",
    "LocalCloud",
    "SkippedResource",
    "TooManyRequestsError",
]
