"""Writes every event it receives to its own JSON file under RECORD_DIR."""

import json
import os
import uuid
from pathlib import Path


def handler(event, context):
    folder = Path(os.environ["RECORD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"recorder-{uuid.uuid4().hex}.json").write_text(json.dumps(event))
    return {"recorded": True}
