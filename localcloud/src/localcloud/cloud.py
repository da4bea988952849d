"""``LocalCloud``: the endpoint, deploys, Lambda runtime and triggers, started and stopped together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from localcloud import moto_bridge
from localcloud.aws import DEFAULT_REGION, make_client
from localcloud.deploy import Deployer, DeployResult
from localcloud.invocation import InvocationResult
from localcloud.limits import ShardLimits
from localcloud.metrics import MetricsPublisher
from localcloud.persistence import StateStore, reset_moto
from localcloud.realize import PRE_DEPLOY_HANDLERS, SKIPPED_HANDLERS, apply_bucket_notifications
from localcloud.runtime import LambdaRuntime
from localcloud.server import LocalEndpoint
from localcloud.triggers.dispatch import AsyncInvoker, destination_sender, moto_async_config
from localcloud.triggers.schedule import ScheduleRunner
from localcloud.triggers.sqs import SqsTrigger
from localcloud.ttl import TtlSweeper, apply_cloudformation_ttl

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

# moto keeps its state in process-wide globals, so one LocalCloud owns them at a time.
_running_lock = threading.Lock()
_running: list[LocalCloud] = []


def _load_mapping_engine() -> Any:
    """The ESM engine class, when ``localcloud.esm`` provides it."""
    try:
        # Optional at import time: the engine is built alongside this package.
        from localcloud.esm import MappingEngine  # noqa: PLC0415
    except ImportError:
        return None
    return MappingEngine


class LocalCloud:
    """Runs SAM templates on this machine: moto for the AWS APIs, localcloud for the rest.

    ``state_dir`` keeps moto's state (restored on start, saved on stop), the function logs and the
    ESM engine's checkpoints; without it everything is in memory and temporary.
    ``schedule_time_scale`` shrinks ``rate(...)`` schedules (tests use e.g. 0.01).
    ``queue_when_throttled`` makes invocations beyond a function's concurrency wait instead of
    raising :class:`~localcloud.invocation.TooManyRequestsError`.
    ``shard_limits`` enforces Kinesis's per-shard read and write limits (:mod:`localcloud.limits`).
    ``async_time_scale`` multiplies asynchronous invocations' throttle backoff (AWS: 1 s doubling to
    5 minutes) and maximum event age (``MaximumEventAgeInSeconds``, 6 hours by default), e.g. 0.01
    in tests; ``async_retry_delays`` are the waits before retrying a function error.
    ``ttl_sweep_interval_s`` is how often expired DynamoDB items are deleted (TTL; None: never),
    so an item goes at most that long after its expiry time (:mod:`localcloud.ttl`).
    ``metrics`` publishes AWS/Kinesis, AWS/Lambda, AWS/DynamoDB and AWS/SQS metrics and the
    functions' embedded-metric-format lines to CloudWatch every ``metrics_interval_s``
    (:mod:`localcloud.metrics`).
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        port: int = 0,
        region: str = DEFAULT_REGION,
        *,
        schedule_time_scale: float = 1.0,
        queue_when_throttled: bool = False,
        async_retry_delays: tuple[float, ...] = (1.0, 2.0),
        engine_settings: Any = None,
        shard_limits: bool = True,
        metrics: bool = True,
        metrics_interval_s: float = 5.0,
        api_gateway: bool = True,
        iot: bool = True,
        iot_policies: bool = False,
        ttl_sweep_interval_s: float | None = 1.0,
        async_time_scale: float = 1.0,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        # localcloud.esm.EngineSettings for the stream mappings (None: AWS's timings).
        self._engine_settings = engine_settings
        self.region = region
        self._endpoint = LocalEndpoint(port=port, region=region)
        self._schedule_time_scale = schedule_time_scale
        self._queue_when_throttled = queue_when_throttled
        self._async_retry_delays = async_retry_delays
        self._async_time_scale = async_time_scale
        self._store = StateStore(self.state_dir) if self.state_dir is not None else None
        self._runtime: LambdaRuntime | None = None
        self._async: AsyncInvoker | None = None
        self._sqs: SqsTrigger | None = None
        self._schedules: ScheduleRunner | None = None
        self._engine: Any = None
        self._deployer: Deployer | None = None
        self._clients: dict[str, Any] = {}
        self._sync_stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.deployments: dict[str, DeployResult] = {}
        self.restored = False
        self._deploy_listeners: list[Callable[[DeployResult], None]] = []
        self._stop_listeners: list[Callable[[], None]] = []
        self._shard_limits = ShardLimits(region) if shard_limits else None
        self._own_middlewares: list[Any] = []
        self._metrics_enabled = metrics
        self._metrics_interval_s = metrics_interval_s
        self._metrics: MetricsPublisher | None = None
        self._api_gateway_enabled = api_gateway
        self._iot_enabled = iot
        self._iot_policies = iot_policies
        self._api_gateway: Any = None
        self._iot: Any = None
        self._ttl = TtlSweeper(region, ttl_sweep_interval_s) if ttl_sweep_interval_s else None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        """Start the endpoint (restoring saved state), the runtime and the triggers."""
        with _running_lock:
            if _running:
                raise RuntimeError("another LocalCloud is running in this process (moto's state is global)")
            _running.append(self)
        try:
            self._start()
        except BaseException:
            # Undo what did start; the saved state is left as it was.
            try:
                self._shut_down(save_state=False)
            finally:
                reset_moto()
                self._release_process()
            raise
        return self

    def _start(self) -> None:
        reset_moto()
        if self._store is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            self.restored = self._store.load()
        self._endpoint.start()
        if self._metrics_enabled:
            self._metrics = MetricsPublisher(
                self.endpoint_url,
                self.region,
                interval_s=self._metrics_interval_s,
                engine_stats=lambda: self._engine.stats() if self._engine is not None else [],
            )
            # Outermost, so it also sees the calls the shard limits (and later middlewares) refuse.
            self._add_own_middleware(self._metrics.middleware)
        if self._shard_limits is not None:
            self._add_own_middleware(self._shard_limits)
        apply_cloudformation_ttl()
        if self._ttl is not None:
            # A middleware: its sweeps run as DynamoDB calls, inside the endpoint's DynamoDB lock.
            self._add_own_middleware(self._ttl)
            self._ttl.start(self.endpoint_url)
        self._runtime = LambdaRuntime(
            self.endpoint_url,
            region=self.region,
            state_dir=self.state_dir,
            queue_when_throttled=self._queue_when_throttled,
        )
        if self._metrics is not None:
            self._runtime.add_observer(self._metrics.functions)
        self._async = AsyncInvoker(
            self._runtime,
            retry_delays=self._async_retry_delays,
            time_scale=self._async_time_scale,
            config_lookup=lambda function: moto_async_config(function, self.region),
            send_destination=destination_sender(self.client, lambda: self._async),
        )
        moto_bridge.activate(self._async)
        moto_bridge.detach_builtin_pollers()
        self._deployer = Deployer(
            self.client,
            self.region,
            skipped_handlers=SKIPPED_HANDLERS,
            post_deploy=[apply_bucket_notifications],
            pre_deploy_handlers=PRE_DEPLOY_HANDLERS,
        )
        self._sqs = SqsTrigger(self._runtime, self.client, self.region)
        self._schedules = ScheduleRunner(self._async, self.region, time_scale=self._schedule_time_scale)
        self._schedules.start()
        engine_class = _load_mapping_engine()
        if engine_class is not None:
            self._engine = engine_class(
                endpoint_url=self.endpoint_url,
                region=self.region,
                invoker=self._runtime,
                state_dir=self.state_dir / "esm" if self.state_dir is not None else None,
                settings=self._engine_settings,
            )
            self._engine.start()
        self._sqs.sync()
        if self._metrics is not None:
            self._metrics.start()
        self._start_front_doors()
        # Mappings created through the API (not by a deploy) are picked up within a second.
        self._sync_thread = threading.Thread(target=self._sync_loop, name="sqs-mapping-sync", daemon=True)
        self._sync_thread.start()

    def stop(self) -> None:
        """Stop triggers and workers, save state (with ``state_dir``), stop the endpoint."""
        if self not in _running:
            return
        try:
            self._shut_down(save_state=True)
        finally:
            reset_moto()
            self._release_process()

    def _shut_down(self, save_state: bool) -> None:
        """Stop every component that was started; save moto's state when asked."""
        for listener in reversed(self._stop_listeners):
            try:
                listener()
            except Exception:
                LOG.exception("a stop listener failed")
        self._sync_stop.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=5)
        self._stop_front_doors()
        for component in (self._ttl, self._schedules, self._engine, self._sqs):
            if component is not None:
                try:
                    component.stop()
                except Exception:
                    LOG.exception("stopping %s failed", type(component).__name__)
        if self._async is not None:
            moto_bridge.deactivate(self._async)
            self._async.stop()
        if self._metrics is not None:
            try:
                self._metrics.stop()  # the last flush, while the endpoint still serves CloudWatch
            except Exception:
                LOG.exception("stopping the metrics publisher failed")
        if self._runtime is not None:
            self._runtime.stop()
        self._endpoint.stop()
        while self._own_middlewares:
            self._endpoint.remove_middleware(self._own_middlewares.pop())
        if self._store is not None and save_state:
            size = self._store.save()
            LOG.info("saved %d bytes of state to %s", size, self._store.path)

    def _start_front_doors(self) -> None:
        """The API Gateway front door and IoT Core (broker, data plane, topic rules), if enabled."""
        # Imported here: they pull in the HTTP and MQTT servers, which plain engine users never need.
        if self._iot_enabled:
            from localcloud.iot import LocalIot  # noqa: PLC0415

            self._iot = LocalIot(self.endpoint_url, region=self.region)
            self._iot.start()
            # boto3's iot-data inside handlers reaches the local data plane, as it would reach AWS's.
            self.add_function_environment(self._iot.client_environment())
        if self._api_gateway_enabled:
            from localcloud.apigateway import ApiGatewayServer  # noqa: PLC0415

            self._api_gateway = ApiGatewayServer(
                self.runtime, region=self.region, aws_endpoint=self.endpoint_url
            ).start()
        # Stacks restored from the state folder are served again.
        for result in self.deployments.values():
            self._serve_stack(result)

    def _serve_stack(self, result: DeployResult) -> None:
        if self._api_gateway is not None:
            self._api_gateway.register(result)
        if self._iot is not None:
            self._iot.register(result)
            # With iot_policies the broker authorizes clients with the stack's IoT policies (viewers
            # watch, devices publish to ingest topics, anonymous clients refused); only stacks with
            # IoT resources set them, so a later stack without any does not lock everyone out.
            if self._iot_policies and any(
                s.resource_type in ("AWS::IoT::TopicRule", "AWS::Cognito::IdentityPoolRoleAttachment")
                for s in result.skipped
            ):
                self._iot.apply_policies(result)

    def _stop_front_doors(self) -> None:
        # Before the runtime and the endpoint: rules still write their queued messages into moto.
        for component in (self._api_gateway, self._iot):
            if component is not None:
                try:
                    component.stop()
                except Exception:
                    LOG.exception("stopping %s failed", type(component).__name__)
        self._api_gateway = self._iot = None

    def _add_own_middleware(self, middleware: Any) -> None:
        # Added on start, removed on stop: a restarted LocalCloud must not wrap moto twice.
        self._endpoint.add_middleware(middleware)
        self._own_middlewares.append(middleware)

    def _release_process(self) -> None:
        with _running_lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _sync_loop(self) -> None:
        while not self._sync_stop.wait(1.0):
            try:
                self._require(self._sqs).sync()
            except Exception:
                LOG.debug("SQS mapping sync failed", exc_info=True)

    # -- what callers use -----------------------------------------------------------------------
    @property
    def api_gateway(self) -> Any:
        """The API Gateway front door (``localcloud.apigateway.ApiGatewayServer``), or None."""
        return self._api_gateway

    @property
    def iot(self) -> Any:
        """Local IoT Core (``localcloud.iot.LocalIot``: ``.ws_url``, ``.data_url``, ...), or None."""
        return self._iot

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: point any boto3 client here (fake credentials work)."""
        return self._endpoint.endpoint_url

    @property
    def runtime(self) -> LambdaRuntime:
        """The Lambda runtime (an :class:`~localcloud.invocation.Invoker`)."""
        return self._require(self._runtime)

    @property
    def async_invoker(self) -> AsyncInvoker:
        """Where SNS, S3, EventBridge and Event-type invocations are queued."""
        return self._require(self._async)

    @property
    def sqs_trigger(self) -> SqsTrigger:
        """The SQS event-source-mapping pollers."""
        return self._require(self._sqs)

    @property
    def shard_limits(self) -> ShardLimits | None:
        """The Kinesis shard-limit middleware (its throttle counters), or None when switched off."""
        return self._shard_limits

    @property
    def ttl_sweeper(self) -> TtlSweeper | None:
        """The DynamoDB TTL sweep (``.sweep()`` runs one now, ``.swept`` counts), or None when off."""
        return self._ttl

    @property
    def metrics(self) -> MetricsPublisher | None:
        """The metrics publisher (``.flush()`` publishes now), or None when switched off."""
        return self._metrics

    def flush_metrics(self) -> int:
        """Publish every metric observed so far to CloudWatch now; returns the data points sent."""
        return self._metrics.flush() if self._metrics is not None else 0

    @property
    def mapping_engine(self) -> Any:
        """The Kinesis / DynamoDB-Streams mapping engine, or None when it is not available."""
        return self._engine

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` pointed at the endpoint (cached per service)."""
        client = self._clients.get(service_name)
        if client is None:
            client = make_client(service_name, self.endpoint_url, self.region)
            self._clients[service_name] = client
        return client

    def deploy(
        self, template_path: Path | str, stack_name: str, parameters: Mapping[str, str] | None = None
    ) -> DeployResult:
        """Deploy (create or update) a SAM / CloudFormation template as ``stack_name``."""
        result = self._require(self._deployer).deploy(Path(template_path), stack_name, parameters)
        runtime = self.runtime
        runtime.register_code_dirs(
            (f.function_name, f.code_dir) for f in result.functions.values() if f.code_dir is not None
        )
        # Code on disk may have changed without the configuration changing: start workers afresh.
        runtime.recycle()
        moto_bridge.detach_builtin_pollers()
        self._require(self._sqs).sync()
        if self._engine is not None:
            self._engine.sync()
        self.deployments[stack_name] = result
        self._serve_stack(result)
        for listener in list(self._deploy_listeners):
            listener(result)
        return result

    # -- extension points for other local servers -----------------------------------------------
    def on_deploy(self, listener: Callable[[DeployResult], None]) -> None:
        """Call ``listener`` after every deploy (e.g. to serve the stack's skipped resources)."""
        self._deploy_listeners.append(listener)

    def on_stop(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` first thing in :meth:`stop` (listeners run newest first)."""
        self._stop_listeners.append(listener)

    def add_function_environment(self, variables: Mapping[str, str]) -> None:
        """Give every function these environment variables too (e.g. another server's endpoint)."""
        self.runtime.add_environment(variables)

    def mount(self, prefix: str, app: Any) -> str:
        """Serve a WSGI ``app`` under ``prefix`` on the endpoint's port; returns its base URL."""
        return self._endpoint.mount(prefix, app)

    def add_middleware(self, middleware: Any) -> None:
        """Wrap every AWS API call to the endpoint (a WSGI middleware: ``app -> app``).

        Used for service limits and fault injection; see :meth:`LocalEndpoint.add_middleware`.
        """
        self._endpoint.add_middleware(middleware)

    def remove_middleware(self, middleware: Any) -> None:
        """Undo :meth:`add_middleware`."""
        self._endpoint.remove_middleware(middleware)

    def invoke(self, function: str, event: Any) -> InvocationResult:
        """Invoke a function (name or ARN) synchronously."""
        return self.runtime.invoke(function, event)

    def wait_for_mappings(self, timeout: float = 30.0, include_windows: bool = False) -> bool:
        """Wait until every event source has been consumed and nothing is in flight.

        Covers the ESM engine (Kinesis / DynamoDB Streams), SQS mappings, queued asynchronous
        invocations and IoT topic rules. Returns False on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            engine_idle = True
            if self._engine is not None:
                engine_idle = bool(
                    self._engine.wait_until_idle(timeout=max(0.0, remaining), include_windows=include_windows)
                )
            async_idle = self.async_invoker.wait_idle(max(0.0, deadline - time.monotonic()))
            # IoT topic rules write device messages into the streams: drain them too.
            rules_idle = self._iot is None or bool(self._iot.wait_idle(max(0.0, deadline - time.monotonic())))
            if (
                engine_idle
                and async_idle
                and rules_idle
                and self._require(self._sqs).idle()
                and self.async_invoker.pending == 0
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @staticmethod
    def _require(component: _T | None) -> _T:
        if component is None:
            raise RuntimeError("LocalCloud is not started")
        return component
