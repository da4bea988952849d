"""Every local server refuses requests a foreign web page could make it serve: a Host that is not
this machine (DNS rebinding) and a write from a foreign Origin (cross-site requests)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
import pytest
from localcloud.httpserver import HttpServer, StartResponse, respond
from localcloud.server import LocalEndpoint

pytestmark = pytest.mark.integration


def _echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answers 200 with the method: reaching it means the request was let through."""
    return respond(start_response, 200, [("Content-Type", "text/plain")], environ["REQUEST_METHOD"].encode())


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer(_echo, name="guard-test") as running:
        yield running


def call(port: int, method: str, headers: dict[str, str]) -> int:
    """The status of one request sent with exactly ``headers`` (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, "/", skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "bucket.localhost:{port}", "[::1]:{port}"]
)
def test_loopback_hosts_are_served(server: HttpServer, host: str) -> None:
    assert call(server.port, "GET", {"Host": host.format(port=server.port)}) == 200


@pytest.mark.parametrize(
    "host", ["attacker.example:{port}", "127.0.0.1.attacker.example", "localhost.attacker.example"]
)
def test_a_rebound_host_is_refused(server: HttpServer, host: str) -> None:
    # Given a page on attacker.example whose name now resolves to 127.0.0.1
    # When its script calls the local server, the browser sends Host: attacker.example
    # Then the server refuses before the app runs
    assert call(server.port, "GET", {"Host": host.format(port=server.port)}) == 403


def test_a_write_from_a_foreign_origin_is_refused(server: HttpServer) -> None:
    host = f"127.0.0.1:{server.port}"
    assert call(server.port, "POST", {"Host": host, "Origin": "https://attacker.example"}) == 403
    assert call(server.port, "DELETE", {"Host": host, "Origin": "null"}) == 403
    # A page served from this machine, and a client that sends no Origin (SDKs, curl), may write.
    assert call(server.port, "POST", {"Host": host, "Origin": "http://127.0.0.1:9"}) == 200
    assert call(server.port, "POST", {"Host": host}) == 200
    # Reads from a foreign origin still reach the server: the browser keeps their answers from the page.
    assert call(server.port, "GET", {"Host": host, "Origin": "https://attacker.example"}) == 200


def test_the_aws_endpoint_refuses_a_cross_site_write_and_serves_sdks() -> None:
    # The AWS endpoint runs functions' code: a foreign page must not reach its APIs.
    endpoint = LocalEndpoint(port=0)
    endpoint.start()
    try:
        port = int(endpoint.endpoint_url.rsplit(":", 1)[1])
        sqs = boto3.client("sqs", endpoint_url=endpoint.endpoint_url, region_name="us-east-1")
        assert sqs.create_queue(QueueName="guarded")["QueueUrl"]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"QueueName": "evil"}).encode()
        connection.request(
            "POST",
            "/",
            body=body,
            headers={
                "Origin": "https://attacker.example",
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "AmazonSQS.CreateQueue",
            },
        )
        assert connection.getresponse().status == 403
        connection.close()
        # moto's state is shared by every test in this process: look for these two queues only.
        names = {u.rsplit("/", 1)[1] for u in sqs.list_queues().get("QueueUrls", [])}
        assert "guarded" in names and "evil" not in names
    finally:
        endpoint.stop()
