"""The local runtime: the deployed ASL definition, executed in-process, offline.

:class:`LocalRelay` starts, in this order:

1. moto's in-memory AWS (``mock_aws`` with ``execute_state_machine``) plus the
   patches to moto in :mod:`relay.local.moto_patches`;
2. the artifact bucket and the workflow table (same keys and index as the stack);
3. real loopback HTTP servers (:mod:`relay.local.servers`): the in-memory AWS for the
   function workers (:class:`~relay.local.servers.AwsEndpoint`), the Lambda Invoke API
   and the AgentCore data-plane gateway;
4. the state machine from ``statemachines/research_report.asl.json`` with the
   ``${…}`` substitutions filled with local ARNs — nothing else in it changes;
   then each function's execution environments: worker processes (forked by a fork
   server started first, while the engine starts), each with exactly the environment
   variables the stack gives that function (:func:`relay_core.contracts.function_environment`),
   its timeout and its memory setting (:class:`~relay.local.servers.Environments`), one
   worker per function started ahead of the first invocation;
5. the EventBridge rules of :func:`relay_core.contracts.status_change_rules`: every
   *Step Functions Execution Status Change* event they match is delivered, in
   order, to the record-failure function through the local Lambda endpoint, as
   EventBridge delivers it to the deployed function;
6. the durable store (:mod:`relay.local.durable`), written through from then on;
7. the REST API (approval pages, and ``/workflows`` when served), with the report
   links' ``/artifacts/{key}`` beside it (the local stand-in for S3 presigned URLs:
   ``RELAY_ARTIFACT_BASE_URL`` points there); the console, when served, is attached
   to the same server under ``/console/`` (:mod:`relay.local.console.server`);
8. the researcher agent app (``BedrockAgentCoreApp`` under uvicorn), registered with
   the gateway;
9. then what the durable store keeps in ``{data_dir}/state/`` is put back (executions
   that were running when their process died become ABORTED, redrivable).

Every server binds 127.0.0.1 and answers only its own names (``127.0.0.1``,
``localhost``, ``[::1]`` with its port, or the API's ``public_url``): a request with
another ``Host`` is refused (421), so no web page can reach them by DNS rebinding.

Only service-specific endpoint variables are set (``AWS_ENDPOINT_URL_LAMBDA``,
``AWS_ENDPOINT_URL_BEDROCK_AGENTCORE``; in the workers also ``AWS_ENDPOINT_URL_S3``,
``_DYNAMODB``, ``_SFN``, … for the in-memory AWS), never the global ``AWS_ENDPOINT_URL``;
credentials are fake. Approval emails are written as ``.eml`` files to
``{data_dir}/outbox``; their links point at the local REST API.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from relay_core.contracts import (
    ALL_FUNCTIONS,
    RUNTIME_SUBSTITUTION,
    STATUS_INDEX,
    TABLE_PARTITION_KEY,
    TASK_FUNCTIONS,
    TaskFunction,
)

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "research_report.asl.json"
STATE_MACHINE_NAME = "relay-research-report"
REGION = "us-east-1"
BUCKET = "relay-artifacts-local"
TABLE = "relay-workflows-local"
#: Where the local API serves artifacts: the links S3 presigned URLs would be when deployed.
ARTIFACTS_PATH = "/artifacts"

#: ``${Key}`` in the ASL file → the folder in ``functions/`` that implements it (the
#: table the stack deploys from: :data:`relay_core.contracts.TASK_FUNCTIONS`).
FUNCTION_SUBSTITUTIONS: dict[str, str] = {spec.substitution_key: spec.name for spec in TASK_FUNCTIONS}
#: How often a status-change delivery is tried before it is given up (and logged).
DELIVERY_ATTEMPTS = 3
#: :meth:`LocalRelay.follow` reads an execution's status at least this often, in seconds.
STATUS_RECHECK_SECONDS = 1.0
_log = logging.getLogger("relay.local")


def substitute(definition: str, values: dict[str, str]) -> str:
    """Fill ``${Key}`` placeholders; raise ``KeyError`` naming any left unfilled."""
    for key, value in values.items():
        definition = definition.replace("${" + key + "}", value)
    if "${" in definition:
        start = definition.index("${")
        raise KeyError(f"unfilled substitution {definition[start:definition.index('}', start) + 1]}")
    return definition


def create_stores(s3: Any, dynamodb: Any) -> None:
    """Create the artifact bucket and the workflow table (same key schema and status
    index as the deployed table) with the given boto3 clients."""
    s3.create_bucket(Bucket=BUCKET)
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def _stop_quietly(server: Any) -> None:
    with contextlib.suppress(Exception):  # keep stopping the rest
        server.stop()


def _warm_up() -> None:
    """Import the researcher agent and load the corpus index (what the first research
    call would otherwise do; the other agents run in the function workers, whose fork
    server imports them), and with the offline model its sentence ranking
    (:func:`relay_agents.text.rank_sentences` imports scikit-learn and bm25s on first
    use, 1.7-2 s of CPU; every offline research answer uses it), in a background thread
    while the runtime starts, so the first Tasks find them ready and the modules are
    made before :func:`relay.run.starting_up` freezes the heap. Imports are CPU work
    under the GIL: this overlaps waits, it does not run on a second core."""
    import relay_agents.researcher  # noqa: F401
    from relay_agents.corpus import corpus_from_settings
    from relay_agents.settings import AgentSettings

    settings = AgentSettings.from_env()
    if settings.model_provider == "offline":
        from relay_agents.text import rank_sentences

        rank_sentences(["Warm up the sentence ranking.", "It imports scikit-learn and bm25s on first use."])
    if settings.knowledge_base_id or (settings.corpus or "").startswith("s3://"):
        return  # remote corpora are reached through the (mocked) AWS APIs once the runtime is up
    corpus_from_settings(settings).search("warm up", k=1)


def defer_moto_batch() -> None:
    """Let ``moto.batch``'s package body run only when something uses it.

    moto's Step Functions interpreter imports ``moto.batch.utils`` for one enum
    (``JobStatus``, its Batch ``.sync`` task); importing that module runs the package's
    ``__init__``, which imports ``moto.batch.models`` and through it all of ``moto.ec2``
    (the EC2 service model, regions, instance types): 1.5 s of CPU, measured with
    ``python -X importtime`` and py-spy on moto 5.2.5, for a service Relay never calls.
    This registers ``moto.batch`` as the same package (same ``__path__``, so its
    submodules import as before) whose body runs on the first read of
    ``batch_backends``, the one name it defines (what moto's backend lookup
    ``moto.backends.get_backend("batch")`` reads), so Batch still works under
    ``mock_aws`` when something calls it. Does nothing once ``moto.batch`` is imported.

    Raises:
        ImportError: moto has no ``moto.batch`` package.
    """
    if "moto.batch" in sys.modules:
        return
    import moto

    spec = importlib.util.find_spec("moto.batch")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError("moto.batch is not a package of the installed moto")
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str) -> Any:
        if name != "batch_backends":
            raise AttributeError(f"module 'moto.batch' has no attribute {name!r}")
        loader.exec_module(package)  # the real body: from .models import batch_backends
        return package.__dict__["batch_backends"]

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["moto.batch"] = package
    moto.batch = package  # type: ignore[attr-defined]  # as the import system sets it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _AgentApp:
    """An ASGI agent app (the researcher's ``BedrockAgentCoreApp``) under uvicorn on loopback,
    answering only its own names (:class:`relay.local.servers.TrustedHosts`).

    It runs under the local servers' uvicorn server (:class:`relay.local.servers.protocol._Uvicorn`),
    which wakes its loop when asked to stop instead of noticing at its next 0.1 s tick.
    """

    def __init__(self, app: Any):
        import uvicorn

        from relay.local.servers import TrustedHosts, _Uvicorn

        self.port = _free_port()
        app = TrustedHosts(self.port).guard(app)  # the gateway calls it as 127.0.0.1:PORT
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", backlog=1024, lifespan="off")
        self.server = _Uvicorn(config)
        self.thread = threading.Thread(target=self.server.run, name="researcher-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Serve in the background; returns once the app accepts connections.

        Raises:
            RuntimeError: it did not start within ``timeout`` seconds.
        """
        self.thread.start()
        if not self.server.ready.wait(timeout) or not self.server.started:
            self.server.request_stop()
            raise RuntimeError("the researcher agent app did not start")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting and close idle connections; an answer in flight still goes out."""
        self.server.request_stop()
        self.server.stopped.wait(timeout)


class _ChangeNotifier:
    """A persistence hook (:func:`relay.local.moto_patches.add_persistence`) that wakes
    :meth:`LocalRelay.follow` when a history grows or an execution changes status, and
    notes, per execution, its history's length (its newest event id: ids run 1, 2, …
    in order) and how many status changes it had, so following an execution costs
    nothing while it waits, reacts at once, reads it again only when it changed (not
    when a Map child or another execution did) and then only its new events."""

    def __init__(self, relay: LocalRelay):
        self.relay = relay

    def history_changed(self, execution_arn: str, events: Any) -> None:
        with self.relay._changed:
            if events:
                self.relay._lengths[execution_arn] = int(events[-1]["id"])
            self.relay._version += 1
            self.relay._changed.notify_all()

    def execution_changed(self, execution: Any, status: Any) -> None:
        with self.relay._changed:
            arn = str(execution.exec_arn)
            self.relay._status_changes[arn] = self.relay._status_changes.get(arn, 0) + 1
            self.relay._version += 1
            self.relay._changed.notify_all()

    def object_put(self, *args: Any) -> None:
        return None

    object_deleted = item_changed = memo_changed = object_put


class LocalRelay:
    """Everything Relay needs, running in this process on loopback.

    Args:
        data_dir: where the outbox (``outbox/*.eml``) and the local signing secret live.
        corpus: the researcher's corpus (a folder); ``None`` = botocore's AWS docs.
        api_port: the REST API port (0 = any free port).
        retry_time_scale: multiplies every ASL Retry wait (1.0 = real seconds).
        mock_config: a Step Functions Local MockConfigFile for ``arn#TestCase`` runs.
        log_level: Powertools log level for the handlers (``WARNING`` keeps the CLI quiet).
        serve_workflows_api: also route ``/workflows`` to ``functions/api`` when it exists.
        public_url: the address users reach the API at when it is not
            ``http://127.0.0.1:PORT`` (a reverse proxy or tunnel in front of it): links
            point there and the API answers that ``Host`` too.
        model: ``"local"``: start the embedded model (:mod:`relay.local.llm`) first and
            point every agent at it; ``"offline"``: the offline model, whatever
            ``RELAY_MODEL_PROVIDER`` says; ``None``: as the environment says.

    Use as a context manager; :meth:`close` stops every server and the mock.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        corpus: str | None = None,
        api_port: int = 0,
        retry_time_scale: float = 1.0,
        mock_config: str | os.PathLike[str] | None = None,
        log_level: str = "WARNING",
        serve_workflows_api: bool = True,
        public_url: str | None = None,
        model: str | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.model = model
        self.llm: Any = None
        self.corpus = corpus
        self.api_port = api_port
        self.retry_time_scale = retry_time_scale
        self.mock_config = Path(mock_config) if mock_config else None
        self.log_level = log_level
        self.serve_workflows_api = serve_workflows_api
        self.public_url = public_url
        self._mock: Any = None
        self._stack: list[Any] = []
        self._saved_env: dict[str, str | None] = {}
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._delivery: threading.Thread | None = None
        self._listener: Any = None
        self.store: Any = None
        self._changed = threading.Condition()
        self._version = 0
        #: History length per execution ARN, as the engine last reported it (see _ChangeNotifier).
        self._lengths: dict[str, int] = {}
        #: Status changes seen per execution ARN (see _ChangeNotifier).
        self._status_changes: dict[str, int] = {}
        #: The last status-change event published per execution ARN.
        self._published: dict[str, str] = {}
        self._notifier = _ChangeNotifier(self)
        #: What the durable store put back at start (:class:`relay.local.durable.Restored`).
        self.restored: Any = None
        #: Status-change events delivered to the record-failure function: ``(event, result)``.
        self.deliveries: list[tuple[dict[str, Any], dict[str, Any]]] = []

    # ----- lifecycle -------------------------------------------------------------
    def _setenv(self, **values: str) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def __enter__(self) -> LocalRelay:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        """Start everything, step by step (each a method below, in the order of the module
        docstring); :meth:`close` stops what was started, whichever step failed."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._set_process_environment()
        fork_server = threading.Thread(target=self._start_fork_server, name="fork-server", daemon=True)
        fork_server.start()  # a process of its own: imports the libraries while the engine starts
        self._start_model()
        self._quiet_loggers()
        warm_up = threading.Thread(target=self._warm_up, name="warm-up", daemon=True)
        warm_up.start()
        self._start_engine()
        self._create_stores()
        self._start_service_endpoints()
        self._create_state_machine()
        self._start_functions(fork_server)
        self._start_event_delivery()
        self._open_durable_store()
        self._start_api()
        self._start_researcher()
        self._inject_faults_from_environment()
        warm_up.join()  # before any execution: the agents' caches are filled by one thread only
        self.restored = self.store.restore(self.s3, self.dynamodb)

    # ----- the steps of start() ------------------------------------------------------------
    def _set_process_environment(self) -> None:
        """Fake credentials, the Region, Powertools' settings, the MockConfigFile and the corpus."""
        self._setenv(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SESSION_TOKEN="testing",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            POWERTOOLS_LOG_LEVEL=self.log_level,
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_DISABLED="true",
            POWERTOOLS_SERVICE_NAME="relay",
        )
        if self.mock_config:
            self._setenv(SFN_MOCK_CONFIG=str(self.mock_config))
        if self.corpus:
            self._setenv(RELAY_CORPUS=str(self.corpus))

    def _start_model(self) -> None:
        """``model="local"``: the embedded model's server (stopped with the runtime), and the
        ``RELAY_MODEL_*`` variables that point the agents at it; ``"offline"``: the offline model."""
        if self.model == "offline":
            for name in ("RELAY_MODEL_URL", "RELAY_MODEL_ID", "RELAY_MODEL_API_KEY"):
                self._setenv(**{name: ""})
            self._setenv(RELAY_MODEL_PROVIDER="offline")
        elif self.model == "local":
            from relay.local.llm import EmbeddedModel

            self.llm = EmbeddedModel().start()
            self._stack.append(self.llm)
            self._setenv(**self.llm.environment())

    def _quiet_loggers(self) -> None:
        from relay_core.observability import logger as relay_logger

        relay_logger.setLevel(self.log_level)  # it may exist already (a corpus check imported it)
        logging.getLogger("bedrock_agentcore").setLevel(self.log_level)
        # moto warns that ToleratedFailurePercentagePath "has no effect": moto_patches enforces it.
        logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").setLevel(logging.ERROR)
        # The interpreter logs every caught Task failure with its whole parse tree at ERROR;
        # the history already records them (see Progress in relay/run.py).
        if self.log_level != "DEBUG":
            logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)

    def _start_engine(self) -> None:
        """moto's in-memory AWS with its Step Functions interpreter, patched (:mod:`relay.local.moto_patches`)."""
        from moto import mock_aws
        from moto.core import DEFAULT_ACCOUNT_ID

        from relay.local import moto_patches

        self.account_id = DEFAULT_ACCOUNT_ID
        defer_moto_batch()
        moto_patches.install()
        moto_patches.set_retry_time_scale(self.retry_time_scale)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()

    def _create_stores(self) -> None:
        """The clients the runtime uses, the artifact bucket and the workflow table."""
        import boto3

        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_stores(self.s3, self.dynamodb)

    def _start_fork_server(self) -> None:
        from relay.local.servers import start_fork_server

        try:
            start_fork_server()
        except Exception as exc:  # the first worker start raises it again, where it is reported
            _log.debug("fork server failed to start: %s", exc)

    def _start_service_endpoints(self) -> None:
        """The in-memory AWS endpoint for the workers, the Lambda Invoke API and the AgentCore
        gateway on loopback, and the environment the handlers read (endpoints, stores, the
        API's address for links, the outbox)."""
        from relay.local.servers import AgentCoreGateway, AwsEndpoint, LambdaServer

        self.aws = AwsEndpoint().start()
        self._stack.append(self.aws)
        self.lambdas = LambdaServer(self.account_id, REGION).start()
        self._stack.append(self.lambdas)
        self.gateway = AgentCoreGateway().start()
        self._stack.append(self.gateway)
        self.researcher_arn = f"arn:aws:bedrock-agentcore:{REGION}:{self.account_id}:runtime/relay_researcher-local"
        self._api_port = self.api_port or _free_port()
        self.api_url = f"http://127.0.0.1:{self._api_port}"
        links_to = (self.public_url or self.api_url).rstrip("/")
        self._setenv(
            AWS_ENDPOINT_URL_LAMBDA=self.lambdas.url,
            AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=self.gateway.url,
            RELAY_ARTIFACT_BUCKET=BUCKET,
            RELAY_TABLE_NAME=TABLE,
            RELAY_API_BASE_URL=links_to,
            RELAY_ARTIFACT_BASE_URL=links_to + ARTIFACTS_PATH,
            RELAY_SIGNING_SECRET_FILE=str(self.data_dir / "signing.key"),
            RELAY_OUTBOX_DIR=str(self.outbox),
            RELAY_MAIL_FROM="relay@localhost",
            RELAY_APPROVER_EMAIL="approver@localhost",
        )

    def _create_state_machine(self) -> None:
        """The deployed definition with its ``${…}`` substitutions filled with local ARNs."""
        definition = substitute(
            ASL_PATH.read_text(),
            {key: self.lambdas.arn(name) for key, name in FUNCTION_SUBSTITUTIONS.items()}
            | {RUNTIME_SUBSTITUTION: self.researcher_arn},
        )
        self.state_machine_arn = self.sfn.create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=definition,
            roleArn=f"arn:aws:iam::{self.account_id}:role/relay-local-state-machine",
            type="STANDARD",
        )["stateMachineArn"]

    def function_config(self, spec: TaskFunction, folder: Path | None = None) -> Any:
        """How function ``spec`` runs here (:func:`relay.local.functions.function_config`)."""
        from relay.local.functions import function_config

        folder = folder or ROOT / "functions" / spec.name
        return function_config(spec, folder, self.aws.url, self.lambdas.arn(spec.name), self.state_machine_arn, self.log_level)

    def add_function(self, spec: TaskFunction, folder: Path | None = None, prestart: int = 0) -> Any:
        """Serve function ``spec`` (from ``folder``, default ``functions/<name>``) on the
        Lambda endpoint in worker processes; returns its :class:`relay.local.servers.Environments`."""
        from relay.local.servers import Environments

        environments = Environments(self.function_config(spec, folder))
        self.lambdas.add(spec.name, environments)
        if prestart:
            environments.prestart(prestart)
        return environments

    def _start_functions(self, fork_server: threading.Thread) -> None:
        """Every function in ``functions/`` in its execution environments, and one worker of
        each started now in the background (the first invocations find them warm)."""
        from relay.local.functions import prestart_in_background
        from relay.local.servers import Environments

        pools = {}
        for spec in ALL_FUNCTIONS.values():
            if (ROOT / "functions" / spec.name / "app.py").is_file():
                pools[spec.name] = Environments(self.function_config(spec))
                self.lambdas.add(spec.name, pools[spec.name])
        prestart_in_background(pools, after=fork_server)

    def _open_durable_store(self) -> None:
        """The data folder's store, written through from now on (restored at the end of start)."""
        from relay.local import moto_patches
        from relay.local.durable import DurableStore

        self.store = DurableStore(self.data_dir, BUCKET, TABLE, self.state_machine_arn)
        moto_patches.add_persistence(self.store)
        moto_patches.add_persistence(self._notifier)

    def _start_api(self) -> None:
        """The REST API (``/approvals/``, and ``/workflows`` when served) and the report
        links' ``/artifacts/`` on the API's port."""
        from relay.local.servers import ApiServer, artifact_app

        functions = self.lambdas.functions()
        routes: list[tuple[str, Any]] = [("/approvals/", functions["approvals"])]
        if self.serve_workflows_api and "api" in functions:
            routes.append(("/workflows", functions["api"]))
        public = [self.public_url] if self.public_url else []
        self.api = ApiServer(routes, port=self._api_port, public_urls=public)
        self.api.attach(ARTIFACTS_PATH, artifact_app(self.s3, BUCKET))
        self._stack.append(self.api.start())

    def _start_researcher(self) -> None:
        """The researcher agent app on loopback, registered with the AgentCore gateway."""
        from relay_agents.agentcore_app import app as researcher_app

        researcher_app.logger.setLevel(self.log_level)  # BedrockAgentCoreApp logs every call at INFO
        self.researcher = _AgentApp(researcher_app)
        self.researcher.start()
        self._stack.append(self.researcher)
        self.gateway.register(self.researcher_arn, self.researcher.url)

    def _inject_faults_from_environment(self) -> None:
        """``RELAY_LOCAL_FAULTS``: a JSON list of :class:`relay.local.servers.Fault` fields plus
        ``"endpoint": "lambda" | "agentcore"``, injected at start (drills and tests of a
        ``relay serve`` process, e.g. a slow researcher to kill the server mid-research)."""
        from relay.local.servers import Fault

        raw = os.environ.get("RELAY_LOCAL_FAULTS")
        if not raw:
            return
        for spec in json.loads(raw):
            spec = dict(spec)
            endpoint: Any = {"lambda": self.lambdas, "agentcore": self.gateway}[spec.pop("endpoint")]
            endpoint.inject(Fault(**spec))

    def _warm_up(self) -> None:
        try:
            _warm_up()
        except Exception as exc:  # the first real call will raise it again, where it is reported
            _log.debug("warm-up failed: %s", exc)

    # ----- EventBridge, locally --------------------------------------------------------
    def _start_event_delivery(self) -> None:
        """The EventBridge rules, locally: matching status-change events are delivered in
        order to the record-failure function through the Lambda endpoint."""
        import boto3
        from relay_core.contracts import STATUS_CHANGE_FUNCTION, matches, status_change_rules

        from relay.local import moto_patches

        rules = list(status_change_rules(self.state_machine_arn).values())
        self._lambda = boto3.client("lambda", region_name=REGION)
        target = self.lambdas.arn(STATUS_CHANGE_FUNCTION.name)

        def listener(event: dict[str, Any]) -> None:
            if any(matches(rule, event) for rule in rules):
                self._events.put(event)
            with self._changed:  # follow() waits for this before it drains the deliveries
                self._published[event["detail"]["executionArn"]] = event["detail"]["status"]
                self._version += 1
                self._changed.notify_all()

        def deliver() -> None:
            while (event := self._events.get()) is not None:
                try:
                    self.deliveries.append((event, self._invoke(target, event)))
                except Exception:  # keep delivering the next events; say what went wrong
                    _log.exception("status-change delivery to %s failed", target)
                finally:
                    self._events.task_done()
            self._events.task_done()

        self._listener = listener
        moto_patches.add_status_listener(listener)
        self._delivery = threading.Thread(target=deliver, name="eventbridge-delivery", daemon=True)
        self._delivery.start()

    def _invoke(self, function_arn: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the target like EventBridge: retried on failure, then logged and dropped."""
        result: dict[str, Any] = {}
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            answer = self._lambda.invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
            result = json.loads(answer["Payload"].read() or b"null") or {}
            if not answer.get("FunctionError"):
                return result
            _log.warning(
                "status-change delivery failed (attempt %d of %d): %s", attempt, DELIVERY_ATTEMPTS, result.get("errorMessage")
            )
        return result

    def drain_events(self, timeout: float = 30.0) -> None:
        """Block until every status-change event queued so far has been delivered.

        Raises:
            TimeoutError: deliveries still pending after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._events.all_tasks_done:
            while self._events.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._events.all_tasks_done.wait(remaining):
                    raise TimeoutError(f"status-change events still undelivered after {timeout} s")

    def close(self) -> None:
        from relay.local import moto_patches

        if self._listener is not None:
            moto_patches.remove_status_listener(self._listener)
            self._listener = None
        moto_patches.remove_persistence(self._notifier)
        if self.store is not None:
            moto_patches.remove_persistence(self.store)
            with contextlib.suppress(OSError):
                self.store.heartbeat()
            moto_patches.forget_executions(self.state_machine_arn.replace(":stateMachine:", ":execution:") + ":")
        if self._delivery is not None:
            self._events.put(None)
            self._delivery.join(timeout=10)
            self._delivery = None
        # Stop the servers together: each waits out its accept loop's poll interval.
        stoppers = [threading.Thread(target=_stop_quietly, args=(server,), daemon=True) for server in reversed(self._stack)]
        self._stack.clear()
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=10)
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # ----- using it ----------------------------------------------------------------
    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox"

    def start_execution(self, request: dict[str, Any], name: str, test_case: str | None = None) -> str:
        """Start an execution named ``name`` (always named, so a retried start cannot start a second execution); returns its ARN."""
        arn = self.state_machine_arn + (f"#{test_case}" if test_case else "")
        return str(self.sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))["executionArn"])

    def redrive(self, execution_arn: str) -> dict[str, Any]:
        """RedriveExecution; returns its answer (``redriveDate``)."""
        return dict(self.sfn.redrive_execution(executionArn=execution_arn))

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.sfn.describe_execution(executionArn=execution_arn))

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every GetExecutionHistory event, oldest first (follows nextToken when present)."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events
            kwargs["nextToken"] = token

    def _events_after(self, execution_arn: str, last_id: int) -> list[dict[str, Any]]:
        """The history events with an id above ``last_id``, oldest first, read newest first
        (``reverseOrder``) a page just as long as the engine says is new, so following a
        run of n events costs O(n) in all, not O(n²). Event ids are 1, 2, … in order
        (GetExecutionHistory), so a page reaches back far enough once its oldest id is
        ``last_id + 1`` or lower, or it is not full; otherwise a page twice as long is read."""
        with self._changed:
            length = self._lengths.get(execution_arn, 0)
        want = max(length - last_id, 1)
        while want <= 1000:  # GetExecutionHistory's largest page
            page = self.sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=want)["events"]
            if len(page) < want or int(page[-1]["id"]) <= last_id + 1:
                return [event for event in reversed(page) if int(event["id"]) > last_id]
            want *= 2
        return [event for event in self.history(execution_arn) if int(event["id"]) > last_id]

    def follow(
        self,
        execution_arn: str,
        poll_seconds: float = 0.1,
        timeout: float | None = None,
        on_poll: Callable[[], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield history events as they happen until the execution stops, then wait
        for its status-change events to reach the record-failure function.

        ``on_poll`` runs once per poll, also while no event arrives (an execution
        waiting for its task token records nothing until someone decides). Events
        from before a redrive are yielded too (the history is one). The execution is
        read again when the engine reports a change to it (a history event or a status
        change), and then only its new events (:meth:`_events_after`); its status is
        also read every :data:`STATUS_RECHECK_SECONDS` while nothing is reported (a
        safety net: every status change the engine makes is reported).

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
        """
        last_id = 0
        deadline = None if timeout is None else time.time() + timeout
        read: tuple[int, int, str | None] | None = None  # what the execution looked like when last read
        status = "RUNNING"
        described = 0.0
        while True:
            with self._changed:
                version = self._version
                now = (self._lengths.get(execution_arn, 0), self._status_changes.get(execution_arn, 0), self._published.get(execution_arn))
            stale = time.monotonic() - described >= STATUS_RECHECK_SECONDS
            if now != read or stale:
                if read is None or now[1:] != read[1:] or stale:
                    status = self.describe(execution_arn)["status"]  # before the history: it then holds the last event
                    described = time.monotonic()
                if read is None or last_id == 0:
                    events = self.history(execution_arn)
                elif now[0] > last_id or now[1:] != read[1:]:
                    events = self._events_after(execution_arn, last_id)
                else:
                    events = []
                read = now
                for event in events:
                    if int(event["id"]) > last_id:
                        last_id = int(event["id"])
                        yield event
                if status != "RUNNING":
                    # The engine shows the new status a moment before it publishes the event:
                    # wait for the event, then for its delivery to the record-failure function.
                    def published(stopped: str = status) -> bool:
                        return self._published.get(execution_arn) == stopped

                    with self._changed:
                        self._changed.wait_for(published, timeout=10)
                    self.drain_events()
                    return
            if on_poll is not None:
                on_poll()
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"execution still RUNNING after {timeout} s")
            with self._changed:  # woken by the next history event or status change, else after poll_seconds
                if self._version == version:
                    self._changed.wait(poll_seconds)

    def wait(self, execution_arn: str, timeout: float = 120) -> dict[str, Any]:
        """Block until the execution stops; return DescribeExecution."""
        for _ in self.follow(execution_arn, timeout=timeout):
            pass
        return self.describe(execution_arn)

    def artifacts(self, workflow_id: str) -> dict[str, bytes]:
        """Every object under ``workflows/{workflow_id}/`` by key suffix."""
        prefix = f"workflows/{workflow_id}/"
        out: dict[str, bytes] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"][len(prefix):]] = self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        return out
