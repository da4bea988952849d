"""``localcloud`` on the command line: ``localcloud up TEMPLATE`` runs a SAM template in the foreground."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from localcloud.cloud import LocalCloud
from localcloud.deploy import DeployError, DeployResult
from localcloud.persistence import IncompatibleStateError

DESCRIPTION = """\
Run an AWS SAM (or CloudFormation) template on this machine: no AWS account, no Docker.

moto serves the AWS APIs (Kinesis, DynamoDB, DynamoDB Streams, SQS, SNS, S3, CloudWatch, Logs,
IAM, CloudFormation, Lambda, EventBridge, STS) on one local endpoint; localcloud deploys the
template into it, runs Lambda handlers from their CodeUri folders in warm worker processes, and
drives event source mappings, SNS / S3 notifications and schedule rules.

Point any AWS SDK at the printed endpoint with any credentials, e.g.
  aws --endpoint-url http://127.0.0.1:4566 kinesis list-streams
"""


def _parameter(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="localcloud", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="start localcloud, deploy a template, and run until Ctrl-C / SIGTERM",
        description="Start the local endpoint, deploy TEMPLATE, print the endpoint, outputs and any "
        "resources localcloud does not create, then run in the foreground until Ctrl-C or SIGTERM. "
        "On exit, workers stop and (with --state-dir) moto's state is saved so the next run resumes.",
    )
    up.add_argument("template", type=Path, help="path to template.yaml (SAM or CloudFormation, YAML or JSON)")
    up.add_argument("--stack-name", default=None, help="stack name (default: the template folder's name)")
    up.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".localcloud"),
        help="folder for saved state, function logs and mapping checkpoints (default: .localcloud)",
    )
    up.add_argument("--no-state", action="store_true", help="keep everything in memory; save nothing")
    up.add_argument(
        "--port", type=int, default=4566, help="port on 127.0.0.1 (default: 4566; 0 picks a free one)"
    )
    up.add_argument("--region", default="us-east-1", help="AWS region to emulate (default: us-east-1)")
    up.add_argument(
        "--parameter",
        action="append",
        type=_parameter,
        default=[],
        metavar="KEY=VALUE",
        help="template parameter override (repeatable)",
    )
    up.add_argument(
        "--info-file",
        type=Path,
        default=None,
        help="also write the endpoint and outputs as JSON to this file once ready",
    )
    up.add_argument(
        "--iot-open",
        action="store_true",
        help="let any MQTT client do anything on the local broker (default: the stack's IoT policies, "
        "clients without an identity refused; see localcloud/iot/README.md)",
    )
    up.add_argument("--verbose", "-v", action="store_true", help="log localcloud's activity")
    return parser


def render_deploy(console: Console, cloud: LocalCloud, result: DeployResult) -> None:
    """Print the endpoint, the stack outputs and the skipped resources."""
    console.print(
        f"[bold green]localcloud is up[/] — endpoint [bold]{cloud.endpoint_url}[/] ({cloud.region})"
    )
    console.print(f"stack [bold]{result.stack_name}[/]: {result.status}")
    if cloud.api_gateway is not None:
        for api in cloud.api_gateway.apis:
            console.print(f"API [bold]{api.title or api.logical_id}[/]: {api.base_url}")
    if cloud.iot is not None:
        console.print(
            f"IoT: MQTT {cloud.iot.mqtt_url} · MQTT over WebSocket {cloud.iot.ws_url} · "
            f"data plane {cloud.iot.data_url}"
        )
    if result.outputs:
        outputs = Table(title="Outputs", show_lines=False)
        outputs.add_column("Key", style="cyan")
        outputs.add_column("Value")
        for key, value in sorted(result.outputs.items()):
            outputs.add_row(key, value)
        console.print(outputs)
    if result.functions:
        functions = Table(title="Functions")
        functions.add_column("Name", style="cyan")
        functions.add_column("Runs from")
        for name, source in sorted(result.functions.items()):
            functions.add_row(name, str(source.code_dir) if source.code_dir else "(code stored in moto)")
        console.print(functions)
    if result.skipped:
        skipped = Table(title="Not created by moto's CloudFormation")
        skipped.add_column("Logical id", style="yellow")
        skipped.add_column("Type")
        skipped.add_column("Served by")
        for item in result.skipped:
            skipped.add_row(item.logical_id, item.resource_type, item.handled_by or "[red]nothing yet[/]")
        console.print(skipped)
    console.print("Press Ctrl-C to stop.")


def _info(cloud: LocalCloud, result: DeployResult) -> dict[str, object]:
    info: dict[str, object] = {
        "endpoint_url": cloud.endpoint_url,
        "region": cloud.region,
        "stacks": {result.stack_name: {"outputs": result.outputs}},
    }
    if cloud.iot is not None:
        info.update(
            mqtt_url=cloud.iot.ws_url, mqtt_tcp_url=cloud.iot.mqtt_url, iot_data_url=cloud.iot.data_url
        )
    if cloud.api_gateway is not None:
        info["apis"] = {api.logical_id: api.base_url for api in cloud.api_gateway.apis}
    return info


def run_up(args: argparse.Namespace, console: Console) -> int:
    """``localcloud up``: start, deploy, wait for a stop signal, stop."""
    template: Path = args.template
    if not template.is_file():
        console.print(f"[red]no template at {template}[/]")
        return 2
    stack_name = args.stack_name or template.resolve().parent.name or "localcloud"
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    cloud = LocalCloud(
        state_dir=None if args.no_state else args.state_dir,
        port=args.port,
        region=args.region,
        iot_policies=not args.iot_open,
    )
    try:
        try:
            cloud.start()
        except IncompatibleStateError as exc:
            console.print(f"[red]cannot restore the saved state:[/] {exc}")
            return 2
        try:
            result = cloud.deploy(template, stack_name, dict(args.parameter))
        except DeployError as exc:
            console.print(f"[red]deploy failed:[/] {exc}")
            return 1
        render_deploy(console, cloud, result)
        if args.info_file is not None:
            args.info_file.parent.mkdir(parents=True, exist_ok=True)
            args.info_file.write_text(json.dumps(_info(cloud, result), indent=2))
        while not stop.wait(0.5):
            pass
        console.print("stopping…")
        return 0
    finally:
        cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    console = Console()
    if args.command == "up":
        return run_up(args, console)
    return 2


if __name__ == "__main__":
    sys.exit(main())
