"""Lambda execution environments, locally: each function's handler module loaded once per
environment, one invocation at a time each, as Lambda runs them; and the parts of the
Lambda context object the handlers read. Used by the Lambda Invoke API
(:mod:`relay.local.servers.lambda_api`) and API Gateway (:mod:`relay.local.servers.api_gateway`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: Where the Lambda handlers live.
FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.time() + 900)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def load_handler(function_dir: Path) -> ModuleType:
    """Import ``{function_dir}/app.py`` as its own module (each folder is a separate Lambda).
    Every call makes a new, independent module instance (one execution environment)."""
    spec = importlib.util.spec_from_file_location(f"relay_functions.{function_dir.name}", function_dir / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler at {function_dir / 'app.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _own_resolver_state(module)
    return module


def _own_resolver_state(module: ModuleType) -> None:
    """Give the module's Powertools resolver (``app``) its own current event and context.

    Powertools resolvers keep the request in *class* attributes
    (``BaseRouter.current_event``/``lambda_context``), which is right on Lambda, where an
    execution environment serves one invocation at a time, and wrong here, where
    environments are threads of one process. Setting them on the resolver *instance*
    before it resolves shadows the class attributes for this environment only.
    """
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "_to_proxy_event") or not hasattr(app, "resolve"):
        return
    resolve = app.resolve

    def resolve_in_this_environment(event: dict[str, Any], context: Any) -> Any:
        app.current_event = app._to_proxy_event(event)
        app.lambda_context = context
        return resolve(event, context)

    app.resolve = resolve_in_this_environment


class Environments:
    """The execution environments of one function, as Lambda runs them: each a separate
    instance of the function's module (its own module-level state: resolver, caches,
    clients), serving **one invocation at a time**. An invocation takes an idle
    environment, or a new one when all are busy (Lambda scales out the same way), and
    gives it back when it returns; warm environments are reused.

    Library state that Powertools keeps per process (the logger's keys) is made
    per-thread by :func:`isolate_powertools`, so no invocation sees another's.
    """

    def __init__(self, function_dir: Path):
        self.function_dir = function_dir
        self._idle: list[ModuleType] = []
        self._lock = threading.Lock()
        #: How many environments were created (cold starts).
        self.created = 0

    @contextlib.contextmanager
    def acquire(self) -> Iterator[ModuleType]:
        with self._lock:
            module = self._idle.pop() if self._idle else None
        if module is None:
            module = load_handler(self.function_dir)
            with self._lock:
                self.created += 1
        try:
            yield module
        finally:
            with self._lock:
                self._idle.append(module)


_isolated = False


def isolate_powertools() -> None:
    """Make the Powertools logger's keys (correlation id, Lambda context, appended keys)
    per thread, so concurrent invocations in one process never log each other's keys.
    On Lambda one environment serves one invocation at a time, so per-process is per-invocation."""
    global _isolated
    if _isolated:
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    def get(self: Any) -> dict[str, Any]:
        if "_relay_log_format" not in self.__dict__:  # a formatter made before isolation began
            set_(self, self.__dict__.pop("log_format", {}))
        store = self.__dict__["_relay_log_format"]
        value = getattr(store["local"], "value", None)
        if value is None:
            value = dict(store["base"])
            store["local"].value = value
        return value

    def set_(self: Any, value: dict[str, Any]) -> None:
        # The first value (set in __init__, then completed there) is what a new thread starts from;
        # each invocation's clear_state then gives its thread a fresh dict of its own.
        store = self.__dict__.setdefault("_relay_log_format", {"base": value, "local": threading.local()})
        store["local"].value = value

    LambdaPowertoolsFormatter.log_format = property(get, set_)  # type: ignore[assignment]
    _isolated = True

