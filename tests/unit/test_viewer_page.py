"""The viewer page's files: the shipped mqtt.js bundle, the browser's SigV4 signer, its routes.

The signer and the announcer run in Node (the page's modules are plain ES modules and Node 20
has Web Crypto); without Node those tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from alleycat.viewer_page import VIEWER_DIR, aws_viewer_config, viewer_config, viewer_files, viewer_routes

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = VIEWER_DIR / "vendor" / "mqtt.min.js"
LOCK = ROOT / "web" / "package-lock.json"
NODE = shutil.which("node")


def _node(script: str) -> str:
    if NODE is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed: CI must run the viewer's JavaScript tests")
        pytest.skip("node is not installed")
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=VIEWER_DIR,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_shipped_bundle_is_built_from_the_locked_versions() -> None:
    # Given the lock file the bundle is rebuilt from (npm ci && npm run build in web/)
    packages = json.loads(LOCK.read_text())["packages"]
    mqtt_version = packages["node_modules/mqtt"]["version"]
    esbuild_version = packages["node_modules/esbuild"]["version"]
    # Then the committed bundle's banner names the same versions
    banner = BUNDLE.read_text().splitlines()[0]
    match = re.match(r"/\*! mqtt\.js (\S+) .* bundled with esbuild (\S+);", banner)
    assert match, banner
    assert match.groups() == (mqtt_version, esbuild_version)
    # And package.json pins exactly those (no ranges that `npm install` could move)
    declared = json.loads((ROOT / "web" / "package.json").read_text())["devDependencies"]
    assert declared == {"mqtt": mqtt_version, "esbuild": esbuild_version}


def test_the_bundle_is_one_es_module_exporting_connect() -> None:
    text = BUNDLE.read_text()
    assert "import " not in text.split("\n", 1)[1][:200], "no imports left to resolve"
    assert re.search(r"export\s*\{[^}]*\bas connect\b[^}]*\bas default\b", text)


def test_the_browser_signer_matches_botocore() -> None:
    # Given guest credentials with a session token and botocore's presigned URL for IoT
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok/en+with=chars")
    endpoint = "a1b2c3-ats.iot.eu-west-1.amazonaws.com"
    request = AWSRequest(method="GET", url=f"https://{endpoint}/mqtt")
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    unsigned = Credentials(credentials.access_key, credentials.secret_key, None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4QueryAuth(unsigned, "iotdevicegateway", "eu-west-1", expires=3600).add_auth(request)
    expected = dict(parse_qsl(urlsplit(str(request.url)).query)) | {"X-Amz-Security-Token": credentials.token}
    # When the page's signer signs the same URL at the same moment
    signed = _node(
        "import { signMqttUrl } from './sigv4.js';"
        f"const url = await signMqttUrl('wss://{endpoint}/mqtt', 'eu-west-1', "
        "{accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', "
        "sessionToken: 'tok/en+with=chars'}, {now: new Date('2024-05-06T07:08:09Z')});"
        "console.log(url);"
    ).strip()
    # Then both carry the same signature (and the token, added after signing)
    parts = urlsplit(signed)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", endpoint, "/mqtt")
    assert dict(parse_qsl(parts.query)) == expected


def test_announcements_are_throttled_and_say_the_latest_state() -> None:
    out = _node(
        "import { Announcer, rankChangeText } from './announcer.js';"
        "let t = 0; const region = {textContent: ''};"
        "const a = new Announcer(region, {gapMs: 10000, clock: () => t});"
        "a.say('first'); const first = region.textContent;"
        "t = 1000; a.say('second'); t = 2000; a.say('third'); const held = region.textContent;"
        "await new Promise((r) => setTimeout(r, 50));"
        "const before = [[1, 1], [2, 2], [3, 3]];"
        "const after = [{racerId: 2, rank: 1, name: 'Bo'}, {racerId: 1, rank: 2, name: 'Al'},"
        " {racerId: 3, rank: 3, name: 'Cy'}];"
        "console.log(JSON.stringify({first, held, top: rankChangeText(new Map(before), after, null),"
        " followed: rankChangeText(new Map(before), after, 1),"
        " same: rankChangeText(new Map(before), after.slice().sort((x, y) => x.racerId - y.racerId)"
        "   .map((s, i) => ({...s, rank: i + 1})), null)}));"
        "process.exit(0);"
    )
    answer = json.loads(out)
    assert answer["first"] == "first"
    assert answer["held"] == "first", "nothing more within 10 s"
    assert answer["top"] == "Top 3: 1st Bo, 2nd Al, 3rd Cy."
    assert answer["followed"] == "Al moved down to 2nd place."
    assert answer["same"] is None


def test_routes_serve_every_file_and_the_config() -> None:
    config = viewer_config(
        api_url="http://127.0.0.1:1/v1/",
        mqtt_url="ws://127.0.0.1:2/mqtt",
        region="us-east-1",
        topic_prefix="ac",
    )
    routes = viewer_routes(config)
    assert routes["/viewer/"]()[0] == (VIEWER_DIR / "index.html").read_bytes()
    body, kind = routes["/viewer/config.json"]()
    assert kind == "application/json"
    assert json.loads(body) == {
        "apiUrl": "http://127.0.0.1:1/v1",
        "mqttUrl": "ws://127.0.0.1:2/mqtt",
        "region": "us-east-1",
        "identityPoolId": "local",
        "topicPrefix": "ac",
    }
    assert routes["/viewer/viewer.js"]()[1].startswith("text/javascript"), "module scripts need a JS type"
    assert routes["/viewer/vendor/mqtt.min.js"]()[0] == BUNDLE.read_bytes()
    files = {p.as_posix() for p in viewer_files()}
    assert {"index.html", "viewer.css", "viewer.js", "sigv4.js", "vendor/mqtt.min.js"} <= files
    assert not {f for f in files if f.endswith(".py")}


def test_every_module_the_page_imports_is_served() -> None:
    served = {p.as_posix() for p in viewer_files()}
    for module in VIEWER_DIR.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert imported in served, f"{module.name} imports {imported}"
    html = (VIEWER_DIR / "index.html").read_text()
    for linked in re.findall(r'(?:src|href)="([^"#:]+)"', html):
        assert linked in served, linked


def test_aws_config_comes_from_the_stack_outputs() -> None:
    outputs = {
        "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
        "ViewerIdentityPoolId": "eu-west-1:1111",
        "IotTopicPrefix": "alleycat",
    }
    config = aws_viewer_config(outputs, region="eu-west-1", iot_endpoint="x-ats.iot.eu-west-1.amazonaws.com")
    assert config["mqttUrl"] == "wss://x-ats.iot.eu-west-1.amazonaws.com/mqtt"
    assert config["identityPoolId"] == "eu-west-1:1111"
