"""Receives the alerts topic rule's events and prints them (the test reads the function's log)."""

import json


def handler(event, context):
    print("ALERT " + json.dumps(event, sort_keys=True))
    return {"ok": True}
