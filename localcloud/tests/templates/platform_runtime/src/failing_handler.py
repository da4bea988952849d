"""Fails in the way event["how"] names: raise, sys.exit, os._exit, segfault, or not at all (echo)."""

import ctypes
import os
import sys


class RaceNotFoundError(Exception):
    pass


def handler(event, context):
    how = event.get("how")
    if how == "raise":
        raise RaceNotFoundError("race 42 does not exist")
    if how == "sys.exit":
        sys.exit(3)
    if how == "os._exit":
        os._exit(7)
    if how == "segfault":
        ctypes.string_at(0)
    if how == "echo":
        return event["value"]
    if how == "unserialisable":
        return {"when": object()}
    return {"pid": os.getpid()}
