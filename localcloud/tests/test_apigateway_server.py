"""The API Gateway front door over real HTTP: base URLs, host names, concurrency, stop, and one
end-to-end run through LocalCloud's own Lambda runtime."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from localcloud.apigateway import ApiGatewayServer, ApiKind
from test_apigateway_gateway import BASIC, InProcessInvoker, offline_deploy

from localcloud import LocalCloud

E2E = Path(__file__).parent / "templates" / "apigateway_e2e" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def deployed():
    return offline_deploy(BASIC, "shop")


@pytest.fixture
def server(deployed):
    server = ApiGatewayServer(InProcessInvoker(deployed[1])).start()
    yield server
    server.stop()


@pytest.fixture
def infos(server, deployed):
    return {info.logical_id: info for info in server.register(deployed[0])}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_register_reports_base_urls_per_api_and_stage(server, infos, deployed):
    race = infos["RaceApi"]
    assert race.kind is ApiKind.REST
    assert race.base_url == f"{server.url}/restapis/{race.api_id}/v1"
    assert race.stage_urls["v1"] == race.base_url
    assert race.aws_url == f"https://{race.api_id}.execute-api.us-east-1.amazonaws.com"
    assert "GET /races/{raceId}" in race.routes
    # An HTTP API's $default stage is served at the API's root.
    assert infos["ServerlessHttpApi"].base_url == f"{server.url}/restapis/{infos['ServerlessHttpApi'].api_id}"
    assert infos["ItemsHttpApi"].base_url.endswith("/dev")
    assert server.url.startswith("http://127.0.0.1:")
    assert {info.api_id for info in server.apis} == {info.api_id for info in infos.values()}
    # The root lists them for people looking for the URLs.
    status, _, body = get(f"{server.url}/")
    assert status == 200
    assert {api["baseUrl"] for api in json.loads(body)["apis"]} == {info.base_url for info in infos.values()}


def test_rest_request_over_http_with_path_and_query(infos):
    status, headers, body = get(f"{infos['RaceApi'].base_url}/races/r1?lap=1&lap=2")

    assert status == 200
    event = json.loads(body)
    assert event["pathParameters"] == {"raceId": "r1"}
    assert event["multiValueQueryStringParameters"] == {"lap": ["1", "2"]}
    assert event["requestContext"]["path"] == "/v1/races/r1"
    assert headers["X-Handler"] == "echo"


def test_http_api_request_and_not_found_over_http(infos):
    status, _, body = get(f"{infos['ItemsHttpApi'].base_url}/items/7", {"Cookie": "a=1"})
    missing_status, _, missing_body = get(f"{infos['ItemsHttpApi'].base_url}/missing")
    rest_missing, _, rest_body = get(f"{infos['RaceApi'].base_url}/missing")

    assert status == 200
    event = json.loads(body)
    assert event["routeKey"] == "GET /items/{id}" and event["cookies"] == ["a=1"]
    assert (missing_status, json.loads(missing_body)) == (404, {"message": "Not Found"})
    assert (rest_missing, json.loads(rest_body)) == (403, {"message": "Missing Authentication Token"})


def test_stack_output_urls_are_made_local(server, infos):
    race = infos["RaceApi"]

    local = server.local_url(f"{race.aws_url}/v1/races/r9")
    untouched = server.local_url("https://zzzzzzzzzz.execute-api.us-east-1.amazonaws.com/v1")

    assert local == f"{race.base_url}/races/r9"
    assert untouched == "https://zzzzzzzzzz.execute-api.us-east-1.amazonaws.com/v1"
    assert get(local)[0] == 200


def test_api_host_name_serves_aws_paths(server, infos):
    # Given the API's own host name (as <apiId>.execute-api.localhost would send it)
    race = infos["RaceApi"]
    host = f"{race.api_id}.execute-api.localhost:{server.port}"

    # When a request uses AWS's path, without the /restapis prefix
    status, _, body = get(f"{server.url}/v1/races/r2", {"Host": host})

    # Then it reaches the API, and the event names that host
    assert status == 200
    assert json.loads(body)["requestContext"]["domainName"] == host


def test_post_body_head_and_keep_alive(infos):
    base = infos["RaceApi"].base_url
    with requests.Session() as session:
        posted = session.post(f"{base}/races", json={"name": "crit"}, timeout=5)
        # HEAD reaches the ANY route; a resource with only GET has no HEAD method.
        head = session.head(f"{base}/files/report.txt", timeout=5)
        no_head = session.head(f"{base}/races/latest", timeout=5)
        # A chunked body (a generator) is read too.
        chunked = session.post(f"{base}/races", data=(part for part in [b'{"a":', b"1}"]), timeout=5)

    assert posted.status_code == 200 and json.loads(posted.json()["body"]) == {"name": "crit"}
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 0
    assert no_head.status_code == 403
    assert chunked.status_code == 200 and chunked.json()["body"] == '{"a":1}'


def test_large_bodies_stream_in_and_bodies_over_the_limit_are_refused(infos):
    # Given a 3 MB body (the server streams it to the front door) and one over API Gateway's 10 MB
    base = infos["RaceApi"].base_url
    large = json.dumps({"name": "x" * 3_000_000})
    with requests.Session() as session:
        # When both are posted, the large one also chunked (no Content-Length)
        posted = session.post(f"{base}/races", data=large, timeout=30)
        chunked = session.post(
            f"{base}/races",
            data=(large[i : i + 65536].encode() for i in range(0, len(large), 65536)),
            timeout=30,
        )
        too_long = session.post(f"{base}/races", data=b"x" * (10 * 1024 * 1024 + 1), timeout=30)

    # Then the large ones arrive whole, and the one over the limit is a 400
    assert posted.status_code == 200 and posted.json()["body"] == large
    assert chunked.status_code == 200 and chunked.json()["body"] == large
    assert too_long.status_code == 400 and too_long.json() == {"message": "Request Too Long"}


def test_concurrent_requests_are_served_in_parallel(deployed):
    # Given a function that takes 0.3 s
    def slow_echo(event, context):
        time.sleep(0.3)
        return {"statusCode": 200, "body": event["pathParameters"]["raceId"]}

    handlers = {name: slow_echo for name in deployed[1]}
    with ApiGatewayServer(InProcessInvoker(handlers)) as server:
        base = next(i for i in server.register(deployed[0]) if i.logical_id == "RaceApi").base_url

        # When 20 requests arrive at once
        started = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda n: get(f"{base}/races/r{n}"), range(20)))
        elapsed = time.monotonic() - started

    # Then each got its own answer, and together they took about as long as one
    assert [body for _, _, body in results] == [f"r{n}".encode() for n in range(20)]
    assert elapsed < 1.5  # one after another: 6 s


def test_stop_closes_connections_and_releases_the_port(deployed):
    # Given a running server with an open keep-alive connection
    server = ApiGatewayServer(InProcessInvoker(deployed[1])).start()
    base = next(i for i in server.register(deployed[0]) if i.logical_id == "RaceApi").base_url
    port = server.port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    connection.request("GET", urlsplit(f"{base}/races").path)
    assert connection.getresponse().read()

    # When it stops
    server.stop()

    # Then the open connection is ended and nobody listens on the port any more
    assert connection.sock.recv(1) == b""
    connection.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.timeout(60)
def test_end_to_end_through_localcloud_runtime():
    # Given LocalCloud with the front door following its deploys, as LocalCloud wires it
    with LocalCloud() as cloud, ApiGatewayServer(cloud.runtime, region=cloud.region) as server:
        cloud.on_deploy(server.on_deploy)

        # When a stack with a REST API and an HTTP API is deployed and both are called over HTTP
        result = cloud.deploy(E2E, "e2e")
        infos = {info.logical_id: info for info in server.apis}
        rest_url = server.local_url(result.outputs["RestUrl"])
        http_url = server.local_url(result.outputs["HttpUrl"])
        rest = requests.get(f"{rest_url}/races/r1", params=[("lap", "1"), ("lap", "2")], timeout=10)
        http = requests.get(f"{http_url}/races/r2", params={"lap": "3"}, timeout=10)
        missing = requests.get(f"{rest_url}/nope", timeout=10)

    # Then the handlers (powertools resolvers in the runtime's workers) answered
    assert rest_url == infos["RacesApi"].base_url
    assert http_url == infos["ServerlessHttpApi"].base_url
    assert rest.status_code == 200, rest.text
    assert rest.json()["race"] == "r1" and rest.json()["laps"] == ["1", "2"] and rest.json()["stage"] == "v1"
    assert rest.json()["function"] == next(f for f in result.functions if "RestFunction" in f)
    assert http.status_code == 200, http.text
    assert http.json() == {"race": "r2", "route": "GET /races/{raceId}", "lap": "3"}
    assert missing.status_code == 403
