"""The record processor's process: the program the MultiLangDaemon runs for each shard it leases.

Run as ``python -m consumers.kcl.app``. Standard output is the daemon's protocol channel, so it is
taken for amazon-kclpy before anything else can write to it, and every other output (logs, stray
prints) goes to standard error, which the daemon copies into its own log.
"""

from __future__ import annotations

import logging
import sys


def main() -> int:
    """Serve one shard lease until the daemon closes standard input."""
    protocol_out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the protocol channel
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    # Imported after the redirect: loggers built at import time must not capture the channel.
    import boto3  # noqa: PLC0415
    from amazon_kclpy.kcl import KCLProcess  # noqa: PLC0415

    from consumers.kcl.processor import ProcessorConfig, ShardProcessor  # noqa: PLC0415
    from consumers.kcl.settings import kcl_settings  # noqa: PLC0415
    from consumers.quarantine import SqsQuarantine  # noqa: PLC0415
    from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore  # noqa: PLC0415

    settings = kcl_settings()
    endpoint = settings.endpoint_url or None
    # The store's retry policy is the only one (botocore's attempts would multiply it), as in Lambda.
    store = DynamoRaceStore(
        boto3.client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG), settings.table_name
    )
    quarantine = SqsQuarantine(boto3.client("sqs", endpoint_url=endpoint), settings.failure_queue_url)
    processor = ShardProcessor(
        store,
        quarantine.send,
        ProcessorConfig(
            stream_arn=settings.stream_arn,
            window_seconds=settings.window_seconds,
            max_window_messages=settings.max_window_messages,
        ),
    )
    KCLProcess(processor, input_file=sys.stdin, output_file=protocol_out, error_file=sys.stderr).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
