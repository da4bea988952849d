"""A live page for CloudWatch dashboards: renders any dashboard body from GetMetricData.

Generic: it knows CloudWatch's dashboard format, not the stack. Point it at localcloud's endpoint
or at AWS with a boto3 session::

    source = MetricSource(cloudwatch_clients(endpoint_url="http://127.0.0.1:4566"))
    with DashboardServer(source) as server:
        print(server.url)
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

from localcloud.dashboard.body import BodyError, SeriesQuery, widget_queries
from localcloud.dashboard.server import DashboardServer
from localcloud.dashboard.source import ClientFactory, DashboardNotFoundError, MetricSource


def cloudwatch_clients(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: boto3.session.Session | None = None,
) -> ClientFactory:
    """CloudWatch clients per region: localcloud's at ``endpoint_url`` (one region), or AWS's.

    Locally every widget's ``region`` maps to the one endpoint; on AWS a widget naming another
    region is read there, as the console does.
    """
    if session is None:
        if endpoint_url is not None:
            # localcloud accepts any credentials; fixed ones keep the page independent of ~/.aws.
            session = boto3.session.Session(
                aws_access_key_id="dashboard",
                aws_secret_access_key="dashboard",
                region_name=region or "us-east-1",
            )
        else:
            session = boto3.session.Session(region_name=region)
    home = region or session.region_name or "us-east-1"
    clients: dict[str, Any] = {}
    lock = threading.Lock()  # boto3 sessions are not thread-safe; the clients they make are

    def client(for_region: str | None) -> Any:
        chosen = home if endpoint_url is not None or not for_region else for_region
        with lock:
            if chosen not in clients:
                clients[chosen] = session.client("cloudwatch", region_name=chosen, endpoint_url=endpoint_url)
            return clients[chosen]

    return client


__all__ = [
    "BodyError",
    "ClientFactory",
    "DashboardNotFoundError",
    "DashboardServer",
    "MetricSource",
    "SeriesQuery",
    "cloudwatch_clients",
    "widget_queries",
]
