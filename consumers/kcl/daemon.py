"""Starting KCL workers: the MultiLangDaemon (Java, from amazon-kclpy's jars) with our processor.

A worker is one JVM running the KCL's scheduler: it takes shard leases in a DynamoDB lease table
(named after the application) and starts ``python -m consumers.kcl.app`` per leased shard. Several
workers of one application share the shards between them and take over a dead worker's leases
once they expire (``failoverTimeMillis``).

Two settings matter against an endpoint other than AWS's (localcloud):

- The AWS SDK for Java v2 speaks CBOR to Kinesis unless the system property ``aws.cborEnabled`` is
  ``false``; moto's Kinesis reads JSON only (a CBOR body fails there with HTTP 500), so local
  workers set it: the SDK's documented switch, and the JSON protocol carries the same API.
- KCL metrics go to CloudWatch through a client the daemon's flat properties cannot point elsewhere
  (only ``kinesisEndpoint`` and ``dynamoDBEndpoint`` exist), but its nested
  ``cloudWatchClient.endpointOverride`` can: locally they go to localcloud's CloudWatch, so the
  local dashboard shows them as AWS's does, at the KCL's default level (DETAILED).

Metrics carry the Operation dimension only (``metricsEnabledDimensions``): per shard and per worker
the series would multiply with every reshard and restart, and a dashboard could not name them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import amazon_kclpy

MULTILANG_MAIN = "software.amazon.kinesis.multilang.MultiLangDaemon"
LOGBACK_CONFIG = Path(__file__).with_name("logback.xml")


class KclSetupError(RuntimeError):
    """Java or the KCL's jars are missing; the message says how to get them."""


def jar_dir() -> Path:
    """The KCL's jars, as amazon-kclpy's build downloaded them from Maven Central."""
    return Path(amazon_kclpy.__file__).parent / "jars"


def java_command() -> str:
    """The ``java`` to run (``JAVA_HOME``'s, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KclSetupError("the KCL consumer needs Java 17+ (`java` on PATH or JAVA_HOME)")
    if not list(jar_dir().glob("amazon-kinesis-client-multilang-*.jar")):
        raise KclSetupError(f"the KCL's jars are missing from {jar_dir()}: run `make setup`")
    return java


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of one KCL application shares."""

    application_name: str
    stream_name: str
    stream_arn: str
    table_name: str
    failure_queue_url: str
    region: str = "us-east-1"
    # localcloud's endpoint; empty: AWS's endpoints.
    endpoint_url: str = ""
    window_seconds: float = 5.0
    # A worker's leases are taken over this long after it stops renewing them (a crash).
    failover_time_ms: int = 10_000
    idle_time_between_reads_ms: int = 250
    extra_properties: dict[str, str] = field(default_factory=dict)

    def properties(self, worker_id: str) -> str:
        """The MultiLangDaemon's properties file for one worker."""
        props = {
            "executableName": f"{sys.executable} -m consumers.kcl.app",
            "streamName": self.stream_name,
            "applicationName": self.application_name,
            "workerId": worker_id,
            "AwsCredentialsProvider": "DefaultCredentialsProvider",
            "processingLanguage": "python/3.11",
            "initialPositionInStream": "TRIM_HORIZON",
            "regionName": self.region,
            # Empty calls let a quiet shard's window close on time (the race's last window).
            "callProcessRecordsEvenForEmptyRecordList": "true",
            "idleTimeBetweenReadsInMillis": str(self.idle_time_between_reads_ms),
            "failoverTimeMillis": str(self.failover_time_ms),
            "parentShardPollIntervalMillis": "1000",
            "shardSyncIntervalMillis": "5000",
            "metricsEnabledDimensions": "Operation",
        }
        if self.endpoint_url:
            props |= {
                "kinesisEndpoint": self.endpoint_url,
                "dynamoDBEndpoint": self.endpoint_url,
                "cloudWatchClient.endpointOverride": self.endpoint_url,
            }
        props |= self.extra_properties
        return "".join(f"{key} = {value}\n" for key, value in props.items())

    def jvm_options(self) -> list[str]:
        """System properties for the daemon's JVM."""
        return ["-Daws.cborEnabled=false"] if self.endpoint_url else []

    def environment(self) -> dict[str, str]:
        """The daemon's environment; its record processors inherit it."""
        env = dict(os.environ)
        env |= {
            "TABLE_NAME": self.table_name,
            "FAILURE_QUEUE_URL": self.failure_queue_url,
            "STREAM_ARN": self.stream_arn,
            "WINDOW_SECONDS": str(self.window_seconds),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "PYTHONUNBUFFERED": "1",
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
            # Any credentials do locally; the SDK's default chain insists on some.
            env.setdefault("AWS_ACCESS_KEY_ID", "testing")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        return env


class KclWorker:
    """One MultiLangDaemon process (a KCL worker) and its log file."""

    def __init__(self, config: WorkerConfig, worker_id: str, work_dir: Path, cwd: Path | None = None) -> None:
        """Prepare worker ``worker_id``; its properties and log live in ``work_dir``."""
        self.config = config
        self.worker_id = worker_id
        self.work_dir = work_dir
        # The processor runs `-m consumers.kcl.app`, so it starts in the project's folder.
        self.cwd = cwd or Path(__file__).resolve().parents[2]
        self.log_path = work_dir / f"{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the JVM (returns at once; the KCL takes leases over the next seconds)."""
        java = java_command()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        properties = self.work_dir / f"{self.worker_id}.properties"
        properties.write_text(self.config.properties(self.worker_id))
        command = [
            java,
            f"-Dlogback.configurationFile={LOGBACK_CONFIG}",
            # A small heap and quick start: workers are many and the machine may be small.
            "-Xmx384m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            *self.config.jvm_options(),
            "-cp",
            f"{jar_dir()}/*",
            MULTILANG_MAIN,
            "--properties-file",
            str(properties),
        ]
        env = self.config.environment()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.cwd), env.get("PYTHONPATH", "")) if p)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int | None:
        """The JVM's process id (None before start)."""
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        """The JVM is running."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM: the KCL's shutdown hook asks each processor to checkpoint),
        then SIGKILL of the worker's process group if it has not ended within ``timeout``."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """kill -9 the JVM and its record processors (a crash: nothing is checkpointed)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


class KclWorkers:
    """N workers of one KCL application, started and stopped together."""

    def __init__(self, config: WorkerConfig, count: int, work_dir: Path) -> None:
        """Prepare ``count`` workers named ``worker-1`` .. ``worker-N``."""
        self.workers = [KclWorker(config, f"worker-{n}", work_dir) for n in range(1, count + 1)]

    def start(self) -> None:
        """Start every worker."""
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        """Stop every worker gracefully (they checkpoint what they merged)."""
        for worker in self.workers:
            if worker.alive():
                assert worker.process is not None
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.stop()
