"""Measure the front door's cost per request.

    python -m localcloud.apigateway.overhead [--requests N] [--clients C]

It deploys a one-route REST API and a one-route HTTP API whose no-op handler runs in LocalCloud's
runtime, then times sequential requests over one keep-alive connection and concurrent requests
from C clients. For comparison it times ``LocalCloud.invoke`` of the same function: the difference
is the front door's own overhead (HTTP parsing, routing, the proxy event, the response mapping).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from localcloud.apigateway.server import ApiGatewayServer
from localcloud.cloud import LocalCloud

_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
  Noop:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: noop.handler
      Runtime: python3.11
      Events:
        Rest:
          Type: Api
          Properties: { RestApiId: !Ref Api, Path: "/items/{id}", Method: get }
        Http:
          Type: HttpApi
          Properties: { Path: "/items/{id}", Method: GET }
Outputs:
  Name:
    Value: !Ref Noop
"""
_HANDLER = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'


def _timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return (
        f"{label:<30} mean {statistics.fmean(samples):6.3f} ms   median {statistics.median(samples):6.3f} ms"
        f"   p99 {p99:6.3f} ms   ({len(samples)} requests)"
    )


def _getter(url: str) -> Callable[[], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def get() -> bytes:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {body!r}")
        return body

    return get


def _throughput(url: str, requests: int, clients: int) -> float:
    def run(count: int) -> None:
        get = _getter(url)
        for _ in range(count):
            get()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, [requests // clients] * clients))
    return (requests // clients * clients) / (time.perf_counter() - started)


def main() -> None:
    """Print per-request latency (sequential) and requests per second (concurrent)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "src").mkdir()
        (root / "src" / "noop.py").write_text(_HANDLER)
        (root / "template.yaml").write_text(_TEMPLATE)
        with LocalCloud() as cloud:
            result = cloud.deploy(root / "template.yaml", "overhead")
            function = result.outputs["Name"]
            with ApiGatewayServer(cloud.runtime) as server:
                infos = {info.kind.value: info for info in server.register(result)}
                rest = f"{infos['REST'].base_url}/items/1"
                http_api = f"{infos['HTTP'].base_url}/items/1"
                for url in (rest, http_api):
                    _timed(_getter(url), 50)  # warm the worker and the connection
                invoke = _timed(lambda: cloud.invoke(function, {}), args.requests)
                print(_summary("LocalCloud.invoke", invoke))
                print(_summary("REST API (payload 1.0)", _timed(_getter(rest), args.requests)))
                print(_summary("HTTP API (payload 2.0)", _timed(_getter(http_api), args.requests)))
                rate = _throughput(rest, args.requests, args.clients)
                print(f"REST API, {args.clients} clients: {rate:,.0f} requests/s")


if __name__ == "__main__":
    main()
