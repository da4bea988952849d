"""Triggers other than Kinesis / DynamoDB Streams: async invocations, SQS mappings, schedules."""

from localcloud.triggers.dispatch import AsyncInvoker
from localcloud.triggers.schedule import ScheduleExpression, ScheduleRunner, parse_schedule
from localcloud.triggers.sqs import SqsMappingPoller, SqsTrigger

__all__ = [
    "AsyncInvoker",
    "ScheduleExpression",
    "ScheduleRunner",
    "SqsMappingPoller",
    "SqsTrigger",
    "parse_schedule",
]
