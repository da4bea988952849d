"""Echoes its event with the environment and context it ran in; counts warm invocations."""

import os

INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS  # noqa: PLW0603 - module state is what a warm start keeps
    INVOCATIONS += 1
    print(f"echo invocation {INVOCATIONS}")
    return {
        "event": event,
        "invocations": INVOCATIONS,
        "pid": os.getpid(),
        "greeting": os.environ.get("GREETING"),
        "table": os.environ.get("TABLE_NAME"),
        "version": os.environ.get("CODE_VERSION", "1"),
    }
