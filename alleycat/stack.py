"""The local stack: localcloud plus its API Gateway, IoT Core and MQTT, with the stacks deployed.

``alleycat up`` runs it in the foreground; ``alleycat race`` starts one in-process when none is
running. When everything is ready it writes ``.alleycat/local.json`` (the contract outside tools
wait for) and removes it again on stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.dashboard import DashboardServer
from localcloud.deploy import DeployResult
from localcloud.esm import EngineSettings
from localcloud.templates import load_template

from alleycat.artifacts import BUILT_TEMPLATE
from alleycat.dashboard import kcl_dashboard_body, local_dashboard_server
from alleycat.status import StatusServer
from alleycat.viewer_page import PREFIX as VIEWER_PREFIX
from alleycat.viewer_page import viewer_config, viewer_routes
from localcloud import IncompatibleStateError, LocalCloud

DEFAULT_HOME = Path(".alleycat")
DEFAULT_TEMPLATE = Path("template.yaml")
MAIN_STACK = "alleycat"
# Who consumes the race stream locally: the aggregator's event source mapping, or KCL workers.
CONSUMERS = ("lambda", "kcl")


class StackStartError(RuntimeError):
    """The local stack could not start; the message says why and what to try."""


def stack_name_for(template: Path) -> str:
    """``alleycat`` for the main template (or ``sam build``'s copy of it), else the template's folder
    name (e.g. ``lifo-queue``)."""
    if template.resolve() in (DEFAULT_TEMPLATE.resolve(), BUILT_TEMPLATE.resolve()):
        return MAIN_STACK
    return template.resolve().parent.name.replace("_", "-")


@dataclass
class DeployedStack:
    """One deployed stack as the local stack serves it."""

    name: str
    template: Path
    result: DeployResult
    outputs: dict[str, str] = field(default_factory=dict)


class LocalStack:
    """Everything ``alleycat up`` runs."""

    def __init__(
        self,
        templates: list[Path] | None = None,
        *,
        home: Path = DEFAULT_HOME,
        port: int = 0,
        parameters: dict[str, str] | None = None,
        persist: bool = True,
        window_idle_wait_s: float = 2.0,
        consumer: str = "lambda",
        kcl_workers: int = 2,
        kcl_properties: dict[str, str] | None = None,
        iot_open: bool = False,
    ) -> None:
        """Prepare to run ``templates`` (default: template.yaml) with state under ``home``.

        ``consumer="kcl"`` consumes the race stream with ``kcl_workers`` KCL workers
        (:mod:`consumers.kcl`) instead of the aggregator's event source mapping, which is disabled;
        ``kcl_properties`` are added to (or override) the workers' MultiLangDaemon properties (tests
        shorten the KCL's lease and failover timings with them).
        """
        if consumer not in CONSUMERS:
            raise ValueError(f"consumer must be one of {CONSUMERS}")
        self.templates = templates or [DEFAULT_TEMPLATE]
        self.home = home
        self.port = port
        self.parameters = parameters or {}
        self.persist = persist
        self.window_idle_wait_s = window_idle_wait_s
        self.consumer = consumer
        self.kcl_workers = kcl_workers
        self.kcl_properties = dict(kcl_properties or {})
        # The local broker applies the stack's IoT policies unless open (``alleycat up --iot-open``).
        self.iot_open = iot_open
        self.kcl: Any = None  # consumers.kcl.daemon.KclWorkers when consumer == "kcl"
        self.cloud: LocalCloud | None = None
        self.iot: Any = None  # localcloud.iot.LocalIot, served by LocalCloud
        self.api: Any = None  # localcloud.apigateway.ApiGatewayServer, served by LocalCloud
        self.status: StatusServer | None = None
        self.dashboard: DashboardServer | None = None
        self.stacks: dict[str, DeployedStack] = {}

    @property
    def info_path(self) -> Path:
        """``<home>/local.json``."""
        return self.home / "local.json"

    def start(self) -> dict[str, Any]:
        """Start every server, deploy every template, write local.json; returns its content."""
        for template in self.templates:
            if not template.is_file():
                raise StackStartError(f"template {template} not found (run from the project folder)")
        self.home.mkdir(parents=True, exist_ok=True)
        # A stale file from a crashed run would tell outside tools a dead stack is up.
        self.info_path.unlink(missing_ok=True)
        try:
            self.cloud = LocalCloud(
                state_dir=self.home / "state" if self.persist else None,
                port=self.port,
                # AWS keeps an idle tumbling window open up to 2 minutes; locally the last window of
                # a race closes a moment after its end, so results show up while you watch.
                engine_settings=EngineSettings(window_idle_wait_s=self.window_idle_wait_s),
                iot_policies=not self.iot_open,
            )
            self.cloud.start()
            # localcloud serves the template's APIs and IoT rules, and runs the MQTT broker.
            self.iot = self.cloud.iot
            self.api = self.cloud.api_gateway
            for template in self.templates:
                self.deploy(template)
            if MAIN_STACK in self.stacks:
                # Set both ways: a kept state may hold the mapping a previous `--consumer kcl` disabled.
                self._enable_stream_mapping(self.consumer == "lambda")
            if self.consumer == "kcl":
                self._start_kcl()
            # The dashboard page serves the status page (/status, /status.json) beside the
            # dashboards, so the status server's own port is bound but not served.
            self.status = StatusServer(self)
            self.dashboard = local_dashboard_server(
                self.cloud.endpoint_url,
                self.cloud.region,
                self.status,
                viewer=viewer_routes(self.viewer_config()),
            )
            self.dashboard.start()
        except IncompatibleStateError as exc:
            self.stop()
            raise StackStartError(str(exc)) from exc
        except OSError as exc:
            self.stop()
            raise StackStartError(f"could not start the local stack: {exc} (is a port in use?)") from exc
        except Exception:
            self.stop()
            raise
        info = self.describe()
        _write_json_atomically(self.info_path, info)
        return info

    def deploy(self, template: Path) -> DeployedStack:
        """Deploy (or update) one template and serve its APIs and IoT rules."""
        assert self.cloud is not None and self.iot is not None and self.api is not None
        name = stack_name_for(template)
        declared = load_template(template).get("Parameters", {}) or {}
        parameters = {k: v for k, v in self.parameters.items() if k in declared}
        # Functions find the local IoT data plane the way they find the real one: configuration.
        if "IotDataEndpoint" in declared:
            parameters.setdefault("IotDataEndpoint", self.iot.data_url)
        result = self.cloud.deploy(template, name, parameters=parameters)
        outputs = {
            key: self.api.local_url(value)
            if value.startswith("https://") and ".execute-api." in value
            else value
            for key, value in result.outputs.items()
        }
        stack = DeployedStack(name=name, template=template, result=result, outputs=outputs)
        self.stacks[name] = stack
        return stack

    def _enable_stream_mapping(self, enabled: bool) -> None:
        """Enable or disable the race stream's event source mapping (Lambda's own API for it)."""
        assert self.cloud is not None
        stream_arn = self.stacks[MAIN_STACK].outputs.get("StreamArn")
        lambda_client = self.cloud.client("lambda")
        for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
            if stream_arn and mapping.get("EventSourceArn") == stream_arn:
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)

    def _start_kcl(self) -> None:
        """Start the KCL workers in the place of the (disabled) aggregator mapping."""
        from consumers.kcl.daemon import KclSetupError, KclWorkers, WorkerConfig  # noqa: PLC0415

        assert self.cloud is not None
        outputs = self.stacks[MAIN_STACK].outputs
        config = WorkerConfig(
            # One lease table per run, so a fresh stream never meets another run's checkpoints.
            application_name=f"alleycat-kcl-{outputs['StreamName']}",
            stream_name=outputs["StreamName"],
            stream_arn=outputs["StreamArn"],
            table_name=outputs["TableName"],
            failure_queue_url=outputs["DeadLetterQueueUrl"],
            region=self.cloud.region,
            endpoint_url=self.cloud.endpoint_url,
            window_seconds=float(self.parameters.get("WindowSeconds", "5")),
            extra_properties=self.kcl_properties,
        )
        self.kcl = KclWorkers(config, self.kcl_workers, self.home / "kcl")
        try:
            self.kcl.start()
        except KclSetupError as exc:
            raise StackStartError(str(exc)) from exc
        # The workers publish their metrics to localcloud's CloudWatch: the KCL's dashboard (the
        # Fargate template's) joins the stack's on the local dashboard page.
        self.cloud.client("cloudwatch").put_dashboard(
            DashboardName=config.application_name,
            DashboardBody=kcl_dashboard_body(config.application_name, config.stream_name, self.cloud.region),
        )

    def viewer_config(self) -> dict[str, Any]:
        """The viewer page's config.json: this stack's API and MQTT-over-WebSocket, no Cognito."""
        assert self.cloud is not None and self.iot is not None and self.api is not None
        outputs = self.stacks[MAIN_STACK].outputs if MAIN_STACK in self.stacks else {}
        return viewer_config(
            api_url=outputs.get("ApiUrl", self.api.url),
            mqtt_url=self.iot.ws_url,
            region=self.cloud.region,
            topic_prefix=outputs.get("IotTopicPrefix", "alleycat"),
        )

    def describe(self) -> dict[str, Any]:
        """The local.json content (architecture.md's contract)."""
        assert self.cloud is not None and self.iot is not None and self.api is not None
        main = self.stacks.get(MAIN_STACK) or next(iter(self.stacks.values()))
        return {
            "endpoint_url": self.cloud.endpoint_url,
            "region": self.cloud.region,
            "api_url": main.outputs.get("ApiUrl", self.api.url),
            "mqtt_url": self.iot.ws_url,
            "dashboard_url": self.dashboard.url if self.dashboard else "",
            "viewer_url": f"{self.dashboard.url.rstrip('/')}{VIEWER_PREFIX}" if self.dashboard else "",
            "iot_data_url": self.iot.data_url,
            "mqtt_tcp_url": self.iot.mqtt_url,
            "stacks": {name: {"outputs": s.outputs} for name, s in self.stacks.items()},
        }

    def stop(self) -> None:
        """Stop everything (saving state when persistent) and remove local.json."""
        self.info_path.unlink(missing_ok=True)
        if self.kcl is not None:
            with contextlib.suppress(Exception):  # keep stopping the rest
                self.kcl.stop()
            self.kcl = None
        for component in (self.dashboard, self.status):
            if component is not None:
                with contextlib.suppress(Exception):  # keep stopping the rest
                    component.stop()
        if self.cloud is not None:
            self.cloud.stop()
        self.dashboard = None
        self.status = self.api = self.iot = self.cloud = None


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    # Outside tools poll for this file: they must never read a half-written one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".local.", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    os.replace(tmp, path)
