"""The one HTTP server stack: HTTP/1.1 and HTTP/2 cleartext on the endpoint's port, blocking handlers
that call back into the same server, and a stop() that gives the port back."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import h2.config
import h2.connection
import h2.events
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from localcloud.httpserver import HttpServer
from localcloud.server import LocalEndpoint

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    server = LocalEndpoint(port=0, region=REGION)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def signed_kinesis_call(
    endpoint_url: str, operation: str, payload: dict[str, Any]
) -> tuple[dict[str, str], bytes]:
    """The headers and body of a SigV4-signed Kinesis JSON call, as any SDK would send it."""
    body = json.dumps(payload).encode()
    request = AWSRequest(
        method="POST",
        url=f"{endpoint_url}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"Kinesis_20131202.{operation}",
        },
    )
    SigV4Auth(Credentials("testing", "testing"), "kinesis", REGION).add_auth(request)
    return dict(request.headers.items()), body


def read_h2_response(
    sock: socket.socket, connection: h2.connection.H2Connection, stream_id: int, received: bytes = b""
) -> tuple[int, bytes]:
    """Read frames until ``stream_id`` ends: (status, body). ``received``: frames already read."""
    status, body = 0, b""
    sock.settimeout(10)
    while True:
        # Frames that came with an earlier read (after a 101 head, say) are events too.
        data, received = received or sock.recv(65536), b""
        if not data:
            raise ConnectionError("the server closed the connection")
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                connection.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                return status, body
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                raise ConnectionError(f"the server reset the stream: {event.error_code!r}")
        sock.sendall(connection.data_to_send())


def h2_prior_knowledge_post(port: int, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """POST / over HTTP/2 cleartext, starting with the connection preface (no HTTP/1.1 first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        request_headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"127.0.0.1:{port}"),
            (":path", "/"),
            *((name.lower(), value) for name, value in headers.items()),
            ("content-length", str(len(body))),
        ]
        connection.send_headers(1, request_headers)
        connection.send_data(1, body, end_stream=True)
        sock.sendall(connection.data_to_send())
        return read_h2_response(sock, connection, 1)


def test_endpoint_answers_an_aws_call_over_http2_as_over_http11(endpoint):
    # Given a stream, and a signed Kinesis DescribeStreamSummary call for it (moto's state is shared
    # by every test in this process, so a listing may not show this stream on its first page)
    name = f"h2-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=endpoint.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    kinesis.create_stream(StreamName=name, ShardCount=1)
    headers, body = signed_kinesis_call(endpoint.endpoint_url, "DescribeStreamSummary", {"StreamName": name})

    # When it is sent over HTTP/2 with prior knowledge, and over HTTP/1.1
    h2_status, h2_body = h2_prior_knowledge_post(endpoint.port, headers, body)
    request = urllib.request.Request(f"{endpoint.endpoint_url}/", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        h11_status, h11_body = response.status, response.read()

    # Then both answer the same, describing the stream
    assert h2_status == h11_status == 200
    assert json.loads(h2_body) == json.loads(h11_body)
    assert json.loads(h2_body)["StreamDescriptionSummary"]["StreamName"] == name


def test_endpoint_upgrades_http11_to_h2c(endpoint):
    # Given an app mounted on the endpoint
    def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["SERVER_PROTOCOL"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    endpoint.mount("/_localcloud/hello", hello)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = connection.initiate_upgrade_connection().decode()

    # When an HTTP/1.1 request asks to upgrade to h2c
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /_localcloud/hello HTTP/1.1\r\nHost: 127.0.0.1:{endpoint.port}\r\n"
                f"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {settings}\r\n\r\n"
            ).encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, rest = received.partition(b"\r\n\r\n")
        sock.sendall(connection.data_to_send())
        status, body = read_h2_response(sock, connection, 1, received=rest)

    # Then the server switches protocols and answers the request over HTTP/2
    assert head.startswith(b"HTTP/1.1 101")
    assert (status, body) == (200, b"HTTP/2")


def test_blocking_handlers_that_call_the_same_server_do_not_deadlock(endpoint):
    # Given a handler that waits until all 32 requests are in handlers at once, then asks the same
    # endpoint for something else (as an Invoke waits on its function's calls back into the endpoint)
    concurrent = 32
    everyone_in = threading.Barrier(concurrent, timeout=20)

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"inner"]

    def outer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        everyone_in.wait()
        with urllib.request.urlopen(f"{endpoint.endpoint_url}/_localcloud/inner", timeout=20) as response:
            body = b"outer+" + response.read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    endpoint.mount("/_localcloud/inner", inner)
    endpoint.mount("/_localcloud/outer", outer)

    def call(_: int) -> bytes:
        with urllib.request.urlopen(f"{endpoint.endpoint_url}/_localcloud/outer", timeout=30) as response:
            return bytes(response.read())

    # When 32 clients call it at once
    with ThreadPoolExecutor(concurrent) as clients:
        answers = list(clients.map(call, range(concurrent)))

    # Then every one is answered
    assert answers == [b"outer+inner"] * concurrent


def test_stop_releases_the_port_promptly_despite_open_and_busy_connections():
    # Given a server with an idle keep-alive connection and a request stuck in its handler
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/stuck":
            release.wait(30)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = HttpServer(app, name="test")
    server.start()
    port = server.port
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert idle.recv(1024).startswith(b"HTTP/1.1 200")
    busy = socket.create_connection(("127.0.0.1", port))
    busy.sendall(b"GET /stuck HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.2)

    # When it is stopped
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    release.set()

    # Then stop() returned within its grace period, and the port can be bound again at once
    try:
        assert took < 3.0
        again = HttpServer(app, port=port, name="test-again")
        again.start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                assert response.read() == b"ok"
        finally:
            again.stop()
    finally:
        idle.close()
        busy.close()


def test_a_taken_port_is_reported():
    # Given a port somebody else listens on
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        # When a server asks for it, then it says so
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            HttpServer(lambda environ, start_response: [], port=port).start()
