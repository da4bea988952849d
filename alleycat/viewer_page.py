"""The viewer page: live standings in the browser, served beside the dashboards of the local stack.

The page is static (``alleycat/viewer/``: HTML, CSS, ES modules and the bundled mqtt.js) so the
same files deploy to S3 + CloudFront. What differs per stack is one small JSON document,
``config.json``, next to ``index.html``: locally the page server writes it from the running stack;
for AWS, :func:`aws_viewer_config` builds it from the stack's outputs (README: "The viewer page").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localcloud.dashboard.server import Route

VIEWER_DIR = Path(__file__).parent / "viewer"
PREFIX = "/viewer/"
# Module scripts must come with a JavaScript MIME type or the browser refuses them.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
LOCAL_IDENTITY = "local"  # the identity pool id that means "connect anonymously" (localcloud's broker)


def viewer_config(
    *, api_url: str, mqtt_url: str, region: str, topic_prefix: str, identity_pool_id: str = LOCAL_IDENTITY
) -> dict[str, Any]:
    """The page's configuration document (the shape ``viewer.js`` reads)."""
    return {
        "apiUrl": api_url.rstrip("/"),
        "mqttUrl": mqtt_url,
        "region": region,
        "identityPoolId": identity_pool_id,
        "topicPrefix": topic_prefix,
    }


def aws_viewer_config(outputs: Mapping[str, str], *, region: str, iot_endpoint: str) -> dict[str, Any]:
    """``config.json`` for a deployed stack: its outputs and the account's IoT data endpoint."""
    return viewer_config(
        api_url=outputs["ApiUrl"],
        mqtt_url=f"wss://{iot_endpoint}/mqtt",
        region=region,
        topic_prefix=outputs.get("IotTopicPrefix", "alleycat"),
        identity_pool_id=outputs["ViewerIdentityPoolId"],
    )


def viewer_files(root: Path = VIEWER_DIR) -> list[Path]:
    """The files the page is made of, relative to ``root`` (what gets uploaded to the bucket)."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix in CONTENT_TYPES)


def viewer_routes(config: Mapping[str, Any], root: Path = VIEWER_DIR) -> dict[str, Route]:
    """Routes for the dashboard server: ``/viewer/``, its files and ``/viewer/config.json``.

    Files are read per request, so an edited page shows on reload without restarting the stack.
    """
    body = json.dumps(dict(config), indent=2).encode()

    def serve(path: Path) -> Route:
        return lambda: (path.read_bytes(), CONTENT_TYPES[path.suffix])

    routes: dict[str, Route] = {
        f"{PREFIX}{relative.as_posix()}": serve(root / relative) for relative in viewer_files(root)
    }
    routes[PREFIX] = serve(root / "index.html")
    routes[f"{PREFIX}config.json"] = lambda: (body, "application/json")
    return routes


def main(argv: list[str] | None = None) -> int:
    """``python -m alleycat.viewer_page --stack-name S [--region R] [--profile P]``: print config.json."""
    import argparse  # noqa: PLC0415 - only the command line needs these
    import sys  # noqa: PLC0415

    import boto3  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m alleycat.viewer_page",
        description="Print the viewer page's config.json for a deployed stack (upload it beside index.html).",
    )
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    if session.region_name is None:
        parser.error("no region: pass --region or configure one for the profile")
    stack = session.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    endpoint = session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    config = aws_viewer_config(outputs, region=session.region_name, iot_endpoint=endpoint)
    sys.stdout.write(json.dumps(config, indent=2) + "\n")
    return 0


__all__ = [
    "LOCAL_IDENTITY",
    "PREFIX",
    "VIEWER_DIR",
    "aws_viewer_config",
    "main",
    "viewer_config",
    "viewer_files",
    "viewer_routes",
]


if __name__ == "__main__":
    raise SystemExit(main())
