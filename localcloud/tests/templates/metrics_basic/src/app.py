"""Writes each Kinesis record to the table and counts them with a powertools EMF metric."""

import base64
import os

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics()
table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@metrics.log_metrics
def handler(event, context):
    for record in event["Records"]:
        payload = base64.b64decode(record["kinesis"]["data"]).decode()
        table.put_item(Item={"pk": record["kinesis"]["sequenceNumber"], "payload": payload})
        table.get_item(Key={"pk": record["kinesis"]["sequenceNumber"]}, ConsistentRead=True)
    metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=len(event["Records"]))
    return {}


def fail(event, context):
    raise RuntimeError("always fails")
