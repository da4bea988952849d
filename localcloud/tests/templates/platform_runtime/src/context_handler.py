"""Reports what a handler sees: warm module state, the context object, the environment."""

import os

COLD_START_PID = os.getpid()
CALLS = 0


def handler(event, context):
    global CALLS  # noqa: PLW0603 - module state is what a warm start keeps
    CALLS += 1
    print(f"context handler call {CALLS}")
    if event.get("write_item"):
        # boto3 finds the local endpoint through AWS_ENDPOINT_URL, like any other configuration.
        import boto3  # noqa: PLC0415 - only this path needs it

        boto3.client("dynamodb").put_item(
            TableName=os.environ["TABLE_NAME"], Item={"pk": {"S": event["write_item"]}}
        )
    return {
        "calls": CALLS,
        "pid": os.getpid(),
        "cold_start_pid": COLD_START_PID,
        "cwd": os.getcwd(),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "env": {key: os.environ.get(key) for key in event.get("env", [])},
    }
