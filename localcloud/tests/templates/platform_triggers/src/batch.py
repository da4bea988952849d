"""Processes SQS batches; a body starting with "flaky" fails on its first delivery only."""

import json
import os
import uuid
from pathlib import Path


def handler(event, context):
    folder = Path(os.environ["RECORD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for record in event["Records"]:
        receive_count = int(record["attributes"]["ApproximateReceiveCount"])
        if record["body"].startswith("flaky") and receive_count == 1:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        entry = {"body": record["body"], "receive_count": receive_count, "batch_size": len(event["Records"])}
        write_atomically(folder / f"batch-{uuid.uuid4().hex}.json", json.dumps(entry))
    return {"batchItemFailures": failures}


def write_atomically(path, text):
    """Readers polling the folder never see a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
