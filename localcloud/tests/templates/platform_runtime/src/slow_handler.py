"""Sleeps for event["sleep"] seconds, then answers with its process id."""

import os
import time


def handler(event, context):
    print(f"sleeping {event.get('sleep', 0)}s")
    time.sleep(float(event.get("sleep", 0)))
    return {"pid": os.getpid(), "slept": event.get("sleep", 0)}
