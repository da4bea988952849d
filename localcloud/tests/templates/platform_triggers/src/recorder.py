"""Writes every event it receives to its own JSON file under RECORD_DIR."""

import json
import os
import uuid
from pathlib import Path


def handler(event, context):
    folder = Path(os.environ["RECORD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / f"recorder-{uuid.uuid4().hex}.json", json.dumps(event))
    return {"recorded": True}


def write_atomically(path, text):
    """Readers polling the folder never see a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
