"""A KCL worker in a container (ECS Fargate): the image's entry point.

Run as ``python -m consumers.kcl.container``. It reads the task's environment, writes the
MultiLangDaemon's properties with the same :class:`~consumers.kcl.daemon.WorkerConfig` the local
workers use, and replaces itself with the daemon's JVM, so the JVM is the task's main process and
receives ECS's SIGTERM directly (the KCL's shutdown hook then asks each processor to checkpoint).

Two settings differ from the local workers, both for AWS's endpoints:

- ``retrievalMode = POLLING``: records are read with GetRecords, so the stream's
  ``GetRecords.IteratorAgeMilliseconds`` (what the service scales on) measures this consumer.
- ``idleTimeBetweenReadsInMillis`` is 1 s by default: a shard serves 5 GetRecords calls a second
  to all of its polling consumers together.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from consumers.kcl.daemon import LOGBACK_CONFIG, MULTILANG_MAIN, WorkerConfig, jar_dir, java_command
from consumers.settings import ConfigurationError

REQUIRED = (
    "KCL_APPLICATION_NAME",
    "STREAM_NAME",
    "STREAM_ARN",
    "TABLE_NAME",
    "FAILURE_QUEUE_URL",
    "AWS_REGION",
)


def worker_config(env: Mapping[str, str]) -> WorkerConfig:
    """The worker's configuration from the task's environment (raises :class:`ConfigurationError`)."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ConfigurationError(f"the KCL container needs {', '.join(missing)}")
    return WorkerConfig(
        application_name=env["KCL_APPLICATION_NAME"],
        stream_name=env["STREAM_NAME"],
        stream_arn=env["STREAM_ARN"],
        table_name=env["TABLE_NAME"],
        failure_queue_url=env["FAILURE_QUEUE_URL"],
        region=env["AWS_REGION"],
        window_seconds=float(env.get("WINDOW_SECONDS", "5")),
        idle_time_between_reads_ms=int(env.get("KCL_IDLE_TIME_BETWEEN_READS_MS", "1000")),
        extra_properties={"retrievalMode": env.get("KCL_RETRIEVAL_MODE", "POLLING")},
    )


def worker_id() -> str:
    """Unique per task: the task's host name and a random suffix (a restarted task is a new worker)."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


def daemon_command(java: str, properties: Path, config: WorkerConfig) -> list[str]:
    """The JVM's command line: the heap follows the task's memory rather than a fixed size."""
    return [
        java,
        f"-Dlogback.configurationFile={LOGBACK_CONFIG}",
        "-XX:MaxRAMPercentage=60",
        *config.jvm_options(),
        "-cp",
        f"{jar_dir()}/*",
        MULTILANG_MAIN,
        "--properties-file",
        str(properties),
    ]


def main() -> int:
    """Write the properties and exec the MultiLangDaemon (returns only on a configuration error)."""
    try:
        config = worker_config(os.environ)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    work_dir = Path(os.environ.get("KCL_WORK_DIR", "/tmp/kcl"))
    work_dir.mkdir(parents=True, exist_ok=True)
    identity = worker_id()
    properties = work_dir / f"{identity}.properties"
    properties.write_text(config.properties(identity))
    env = config.environment()
    # The processor runs `-m consumers.kcl.app`: the project's folder must be importable.
    project = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    os.chdir(project)
    command = daemon_command(java_command(), properties, config)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
