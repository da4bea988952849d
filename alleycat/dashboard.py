"""``alleycat dashboard`` and the pipeline figures the race screen shows, from CloudWatch.

Locally the dashboard page runs inside the local stack (``dashboard_url`` of local.json); against
AWS, ``alleycat dashboard --stack-name S`` serves the same page on 127.0.0.1 for the stack's own
dashboards, read with your AWS credentials. The race screen's throttled records and iterator age
come from CloudWatch too, so they mean the same locally and on AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
import webbrowser
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from localcloud.dashboard import DashboardServer, MetricSource, cloudwatch_clients
from localcloud.dashboard.server import Route
from localcloud.templates import load_template

from alleycat.argtypes import port
from alleycat.target import StackTarget, TargetError
from alleycat.view import PipelineFigures

if TYPE_CHECKING:
    from alleycat.ports import StatusPages

LOG = logging.getLogger(__name__)
AGGREGATOR = "AggregatorFunction"  # logical id in template.yaml
KCL_TEMPLATE = Path(__file__).resolve().parents[1] / "consumers" / "kcl" / "template.yaml"
# The KCL's key metrics, as its dashboard charts them: (metric name, Operation dimension).
KCL_METRICS = (
    ("CurrentLeases", "RenewAllLeases"),
    ("RecordsProcessed", "ProcessTask"),
    ("MillisBehindLatest", "ProcessTask"),
)


# -- the page ------------------------------------------------------------------------------------


def status_routes(status: StatusPages) -> dict[str, Route]:
    """The status page and status.json, served beside the dashboards on the same port."""

    def page() -> tuple[bytes, str]:
        return status.page().encode(), "text/html; charset=utf-8"

    def snapshot() -> tuple[bytes, str]:
        return json.dumps(status.snapshot(), indent=2, default=str).encode(), "application/json"

    return {"/status": page, "/status.json": snapshot}


LOCAL_DEFAULT_START = "-PT10M"
LOCAL_DEFAULT_PERIOD_S = 10


def local_dashboard_server(
    endpoint_url: str, region: str, status: StatusPages, viewer: Mapping[str, Route] | None = None
) -> DashboardServer:
    """The dashboard page of a running local stack (at ``endpoint_url``): every dashboard deployed.

    ``viewer``: the viewer page's routes (alleycat.viewer_page), served on the same port.
    """
    source = MetricSource(cloudwatch_clients(endpoint_url=endpoint_url, region=region))
    links = {"Event source mappings and stack outputs": "/status"}
    if viewer:
        links["Live leaderboard"] = "/viewer/"
    return DashboardServer(
        source,
        title="Alleycat · local",
        routes=status_routes(status) | dict(viewer or {}),
        links=links,
        # A local stack is young: an hour of 60 s periods would be a page of empty charts.
        default_start=LOCAL_DEFAULT_START,
        default_period=LOCAL_DEFAULT_PERIOD_S,
    )


def kcl_dashboard_body(application_name: str, stream_name: str, region: str) -> str:
    """The KCL consumer's dashboard body for a local stack: the Fargate template's own (one
    definition for AWS and local), its ``!Sub`` variables filled in as CloudFormation would."""
    resource = load_template(KCL_TEMPLATE)["Resources"]["KclDashboard"]
    text, _ = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {"ApplicationName": application_name, "StreamName": stream_name, "AWS::Region": region}
    return re.sub(r"\$\{([^}]+)\}", lambda match: values[match.group(1)], str(text))


def stack_dashboards(cloudformation: Any, stack_name: str) -> list[str]:
    """Names of the ``AWS::CloudWatch::Dashboard`` resources of a deployed stack."""
    names: list[str] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        names += [
            r["PhysicalResourceId"]
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::CloudWatch::Dashboard" and r.get("PhysicalResourceId")
        ]
    return names


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Print (and optionally open) the local dashboard page, or serve one for an AWS stack."""
    if not args.stack_name:
        info = json.loads(args.local_config.read_text()) if args.local_config.is_file() else {}
        url = info.get("dashboard_url")
        if not url:
            raise TargetError(f"no local stack in {args.local_config}: start one with `alleycat up`")
        print(url)
        if args.open:
            webbrowser.open(url)
        return 0
    session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    if session.region_name is None:
        raise TargetError("no region: pass --region or configure one for the profile")
    try:
        names = stack_dashboards(session.client("cloudformation"), args.stack_name)
    except Exception as exc:  # ClientError or missing credentials: the message says which
        raise TargetError(f"cannot read stack {args.stack_name!r} in {session.region_name}: {exc}") from exc
    if not names:
        raise TargetError(f"stack {args.stack_name!r} has no CloudWatch dashboard (deploy template.yaml)")
    source = MetricSource(cloudwatch_clients(session=session), names=names)
    server = DashboardServer(source, port=args.port, title=f"{args.stack_name} · {session.region_name}")
    with server:
        print(f"{server.url}  (dashboards: {', '.join(names)}; Ctrl-C stops)", flush=True)
        if args.open:
            webbrowser.open(server.url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def add_dashboard_command(commands: Any, add_target_options: Any) -> None:
    """Register ``alleycat dashboard`` on the CLI's subparsers."""
    dashboard = commands.add_parser(
        "dashboard",
        help="the stack's CloudWatch dashboard as a live page",
        description="Locally: print the dashboard page's URL (served by `alleycat up` at dashboard_url). "
        "With --stack-name: serve the page on 127.0.0.1 for that AWS stack's dashboards, read from "
        "CloudWatch with your credentials, until Ctrl-C.",
    )
    dashboard.add_argument("--open", action="store_true", help="also open it in a browser")
    dashboard.add_argument("--port", type=port, default=0, help="port for --stack-name (default: a free one)")
    add_target_options(dashboard)
    dashboard.set_defaults(handler=cmd_dashboard)


# -- figures for the race screen ---------------------------------------------------------------------


class PipelineWatch:
    """Polls CloudWatch for the stream's throttled writes and the aggregator's iterator age."""

    def __init__(self, target: StackTarget, *, every_s: float = 3.0, stack_name: str | None = None) -> None:
        """Watch ``target``'s stream and aggregator from now on (``start`` begins polling)."""
        self._target = target
        self._every_s = every_s
        self._stack_name = stack_name or ("alleycat" if target.is_local else None)
        self._since = datetime.now(UTC).replace(microsecond=0)
        # Local metrics are per second; AWS's Lambda and Kinesis metrics are per minute.
        self._period = 5 if target.is_local else 60
        self._figures = PipelineFigures()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._function: str | None = None

    def start(self) -> PipelineWatch:
        """Poll in a background thread."""
        self._thread = threading.Thread(target=self._run, name="pipeline-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def latest(self) -> PipelineFigures:
        """The newest figures (empty until the first poll answers)."""
        with self._lock:
            return self._figures

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                figures = self.poll()
            except Exception as exc:  # a missed poll only leaves the previous figures on screen
                LOG.debug("pipeline figures unavailable: %s", exc)
            else:
                with self._lock:
                    self._figures = figures
            self._stop.wait(self._every_s)

    def _aggregator_name(self) -> str | None:
        if self._function is None and self._stack_name:
            try:
                resources = self._target.client("cloudformation").describe_stack_resource(
                    StackName=self._stack_name, LogicalResourceId=AGGREGATOR
                )
            except Exception as exc:  # no such resource, or no permission: use the stream's figure
                LOG.debug("aggregator of %s not found: %s", self._stack_name, exc)
                self._stack_name = None
                return None
            self._function = resources["StackResourceDetail"]["PhysicalResourceId"]
        return self._function

    def poll(self) -> PipelineFigures:
        """One GetMetricData call: throttled records since the start and the latest iterator age."""
        stream, period = self._target.stream_name, self._period
        queries = [
            _query(
                "throttled",
                ("AWS/Kinesis", "WriteProvisionedThroughputExceeded", "StreamName", stream),
                "Sum",
                period,
            )
        ]
        function = self._aggregator_name()
        if function:
            age = ("AWS/Lambda", "IteratorAge", "FunctionName", function)
        else:  # the stream-level figure when the aggregator cannot be looked up
            age = ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", stream)
        queries.append(_query("age", age, "Maximum", period))
        now = datetime.now(UTC)
        answer = self._target.client("cloudwatch").get_metric_data(
            MetricDataQueries=queries,
            StartTime=self._since - timedelta(seconds=self._period),
            EndTime=now + timedelta(seconds=self._period),
            ScanBy="TimestampAscending",
        )
        results = {r["Id"]: r for r in answer["MetricDataResults"]}
        throttled = results.get("throttled", {}).get("Values", [])
        ages = results.get("age", {}).get("Values", [])
        return PipelineFigures(
            throttled_records=int(sum(throttled)),
            throttled_per_s=throttled[-1] / self._period if throttled else 0.0,
            iterator_age_ms=ages[-1] if ages else None,
            updated_at=time.time(),
        )


def _query(query_id: str, metric: tuple[str, str, str, str], stat: str, period: int) -> dict[str, Any]:
    namespace, name, dimension, value = metric
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": dimension, "Value": value}],
            },
            "Period": period,
            "Stat": stat,
        },
    }


__all__ = [
    "KCL_METRICS",
    "PipelineWatch",
    "add_dashboard_command",
    "cmd_dashboard",
    "kcl_dashboard_body",
    "local_dashboard_server",
    "stack_dashboards",
    "status_routes",
]
