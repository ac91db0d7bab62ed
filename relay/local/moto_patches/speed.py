"""Speed patches: the same results as moto's code with less work, each measured with
``bench/bench_engine.py`` and each with a test that moto's own answer and the patched
one agree (``tests/unit/test_moto_patches.py``).

- ``definition-parse-cache``, ``jsonpath-parse-cache``: a definition and a JSONPath are
  parsed once;
- ``stubber-routes``: moto's routing of an in-process API call is remembered per URL;
- ``untimed-states-in-caller-thread``: a state without a timeout runs in the calling
  thread;
- ``action-names-cache``: a response class's action names are listed once;
- ``json-state-copy``: state data is copied by a pickle round trip (:func:`json_deepcopy`).
"""

from __future__ import annotations

import copy
import functools
import pickle
import threading
import types
from typing import Any

from relay.local.moto_patches.framework import _EXECUTE_STATE, _P, _WORKER, Patch, Target

#: The interpreter modules whose ``copy.deepcopy`` calls copy state data (JSON values, and
#: the evaluation stack and history events, whose other objects fall back to deepcopy).
_JSON_COPY_MODULES = (
    "asl.eval.states",
    "asl.eval.environment",
    "asl.eval.event.event_manager",
    "asl.component.common.path.result_path",
    "asl.component.common.string.string_expression",
    "asl.component.intrinsic.function.statesfunction.json_manipulation.json_merge",
    "asl.component.state.exec.execute_state",
    "asl.component.state.exec.state_map.state_map",
    "asl.component.state.exec.state_parallel.state_parallel",
    "asl.component.state.exec.state_task.service.state_task_service",
    "asl.component.state.exec.state_task.mock_eval_utils",
)
_parse_cache: dict[str, Any] = {}
_parse_lock = threading.Lock()


def _build_parse_cache(_original_entrypoint: Any, original_validate: Any) -> tuple[Any, ...]:
    """The parsed program per definition text: evaluation state lives in the execution's
    environment, not in the parsed components (the Map's iteration program is built per
    Map Run from them). CreateStateMachine's validation parses through the same cache, so
    a new state machine's first execution finds its program ready (moto parsed it at
    creation and again at the first execution)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    def parsed(definition: str) -> Any:
        with _parse_lock:
            program = _parse_cache.get(definition)
            if program is None:
                # parsed under the lock: executions started together wait for one parse
                # instead of each parsing the same text (about a second each)
                program = _parse_cache[definition] = AmazonStateLanguageParser.parse(definition)[0]
        return program

    def _get_evaluation_entrypoint(self: Any) -> Any:
        return parsed(self._evaluation_details.state_machine_details.definition)

    def _validate_definition(definition: str) -> None:
        try:
            parsed(definition)
        except Exception:
            original_validate(definition)  # moto's own InvalidDefinition for this text
            raise  # moto accepted what failed here: keep the failure, do not hide it

    return _get_evaluation_entrypoint, staticmethod(_validate_definition)


def _build_jsonpath_cache(*original_parses: Any) -> tuple[Any, ...]:
    """One cache per parse function (jsonpath-ng's ``parse`` and its ``ext.parse`` build
    different expression classes): a parsed path holds no evaluation state."""
    return tuple(functools.lru_cache(maxsize=4096)(parse) for parse in original_parses)


def _build_stubber_routes(_original: Any) -> tuple[Any, ...]:
    """moto's ``BotocoreStubber.process_request`` with the routing remembered per URL.

    moto finds the handler for every request by matching the URL against every mocked
    service's patterns, then rebuilding that service's URL table (``backend.urls``, a
    property) and matching each entry: about a third of an in-process API call's CPU.
    The patterns and tables depend only on the URL (and on ISO regions being enabled),
    so the ordered ``(service, handler)`` candidates are kept per URL (at most 4,096 URLs);
    the checks that depend on settings (passthrough, the service whitelist) still run on
    every request, in moto's order, with moto's outcomes.
    """
    import re

    import moto.backend_index as backend_index
    from moto.core.base_backend import BackendDict
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
    from moto.core.exceptions import HTTPException, ServiceNotWhitelisted
    from moto.core.request import normalize_request
    from moto.core.utils import get_equivalent_url_in_aws_domain
    from moto.settings import enable_iso_regions

    unknown_aws = re.compile(r"https?://.+\.amazonaws.com/.*")

    def candidates(clean_url: str, _iso: bool) -> tuple[tuple[str, Any], ...]:
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID

        found = []
        for service, pattern in backend_index.backend_url_patterns:
            if not pattern.match(clean_url):
                continue
            backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
            if isinstance(backend_dict, BackendDict):
                account = backend_dict[DEFAULT_ACCOUNT_ID]
                backend = account["us-east-1"] if "us-east-1" in account else account["aws"]
            else:
                backend = backend_dict["global"]
            handler = next((h for url, h in backend.urls.items() if re.compile(url).match(clean_url)), None)
            found.append((service, handler))
        return tuple(found)

    routes = functools.lru_cache(maxsize=4096)(candidates)

    def process_request(self: Any, request: Any) -> Any:
        parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        if passthrough_url(clean_url):
            return None
        for service, handler in routes(clean_url, enable_iso_regions()):
            if passthrough_service(service):
                return None
            if not service_whitelisted(service):
                raise ServiceNotWhitelisted(service)
            if handler is None:
                continue
            from moto.moto_api import recorder

            normalized_request = normalize_request(request)
            try:
                recorder._record_request(normalized_request)
                status, headers, body = handler(normalized_request, normalized_request.raw_url, normalized_request.headers)
            except HTTPException as e:
                status, headers, body = e.code, e.get_headers(), e.get_body()
            return status, headers, body
        if unknown_aws.match(clean_url):
            return 404, {}, "Not yet implemented"
        return None

    return (process_request,)


#: Set by the untimed-state patch for the one ``Thread`` the state is about to start.
_run_in_caller = threading.local()


class _StateThread(threading.Thread):
    """moto's per-state evaluation thread, run in the calling thread when the state has
    no timeout (see :func:`_build_untimed_states`); otherwise a plain daemon thread."""

    def start(self) -> None:
        if getattr(_run_in_caller, "armed", False):
            _run_in_caller.armed = False  # this thread only, not one a nested state starts
            self.run()
        else:
            super().start()


def _build_untimed_states(original_evaluate: Any, _thread: Any) -> tuple[Any, ...]:
    """moto evaluates every Task, Map and Parallel state in a new thread and waits for it
    with the state's timeout, so that a state running past ``TimeoutSeconds`` fails with
    ``States.Timeout`` while its work goes on unobserved. A state without a timeout waits
    moto's default, 99,999,999 s (``TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS``): the thread
    only costs a start and two hand-offs of the GIL. Such a state is evaluated in the
    calling thread through moto's own code (the same frame, copies, exceptions and
    events); a state with ``TimeoutSeconds`` or ``TimeoutSecondsPath`` keeps its thread.
    Of Relay's states only the research Map's AgentCore call and the approval have a
    timeout. Measured with ``bench/bench_engine.py`` (9 Tasks, none timed) together with
    the action-names cache: about a tenth of a no-op workflow's CPU."""

    def _evaluate_with_timeout(self: Any, env: Any) -> None:
        _run_in_caller.armed = bool(self.timeout.is_default_value())
        try:
            original_evaluate(self, env)
        finally:
            _run_in_caller.armed = False

    return _evaluate_with_timeout, _StateThread


def _build_action_names(original: Any) -> tuple[Any, ...]:
    """moto's ``method_names_from_class`` (``inspect.getmembers`` of the response class,
    run for every API call to find the action's method), kept per class with the size of
    each namespace in the class's MRO: a method added later (a patch adding an action)
    changes a size and the names are listed again; replacing a method keeps the names.
    The sizes are read after listing (``inspect.getmembers`` adds ``__annotations__`` to
    a class that had none)."""
    kept: dict[Any, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        entry = kept.get(clazz)
        if entry is not None and entry[0] == tuple(len(vars(k)) for k in clazz.__mro__):
            return entry[1]
        names = list(original(clazz))
        kept[clazz] = (tuple(len(vars(k)) for k in clazz.__mro__), names)
        return names

    return (method_names_from_class,)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for state data, made in C: a dict or list is copied by a pickle
    round trip (about 3× faster than ``copy.deepcopy`` on a workflow's state, measured
    here; pickle and deepcopy rebuild objects by the same ``__reduce_ex__`` protocol and
    keep shared references shared). A string, number, boolean or None is returned as it
    is (immutable); anything else, a value pickle refuses, and any call with ``memo``
    go to ``copy.deepcopy``.
    """
    if memo is not None:
        return copy.deepcopy(value, memo)
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict or kind is list:
        try:
            return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
        except Exception:  # not picklable (a lock, a lambda): deepcopy decides, as moto's code did
            return copy.deepcopy(value)
    return copy.deepcopy(value)


def _build_json_copy(*originals: Any) -> tuple[Any, ...]:
    """Each module's ``copy`` becomes a namespace whose ``deepcopy`` is :func:`json_deepcopy`
    (these modules call nothing else of ``copy``: the source test checks it)."""
    namespace = types.SimpleNamespace(deepcopy=json_deepcopy, __name__=__name__)
    return (namespace,) * len(originals)



PATCHES: tuple[Patch, ...] = (
    Patch(
        name="definition-parse-cache",
        corrects="moto parses the whole definition again for every execution (and at creation).",
        targets=(
            Target(_WORKER, "ExecutionWorker._get_evaluation_entrypoint"),
            Target(_P + "models", "StepFunctionsParserBackend._validate_definition"),
        ),
        uses=(Target(_P + "asl.parse.asl_parser", "AmazonStateLanguageParser.parse"),),
        build=_build_parse_cache,
    ),
    Patch(
        name="jsonpath-parse-cache",
        corrects="moto's JSONPath evaluation has jsonpath-ng build its parser again for every path.",
        targets=(
            Target(_P + "asl.utils.json_path", "parse", origin="jsonpath_ng"),
            Target(_P + "asl.component.common.path.result_path", "parse", origin="jsonpath_ng"),
        ),
        build=_build_jsonpath_cache,
    ),
    Patch(
        name="stubber-routes",
        corrects=(
            "moto matches every in-process API call's URL against every service's patterns and rebuilds "
            "the service's URL table each time (its own TODO: cache this part): a third of the call's CPU."
        ),
        targets=(Target("moto.core.botocore_stubber", "BotocoreStubber.process_request"),),
        uses=(
            Target("moto.backend_index", "backend_url_patterns", origin=None),
            Target("moto.core.config", "passthrough_service"),
            Target("moto.core.config", "passthrough_url"),
            Target("moto.core.config", "service_whitelisted"),
            Target("moto.core.utils", "get_equivalent_url_in_aws_domain"),
            Target("moto.settings", "enable_iso_regions"),
            Target("moto.core.request", "normalize_request"),
            Target("moto.moto_api", "recorder"),
        ),
        build=_build_stubber_routes,
    ),
    Patch(
        name="untimed-states-in-caller-thread",
        corrects=(
            "moto starts a thread for every Task, Map and Parallel state to enforce its timeout, "
            "also when the state has none (a tenth of a no-op workflow's CPU)."
        ),
        targets=(
            Target(_EXECUTE_STATE, "ExecutionState._evaluate_with_timeout"),
            Target(_EXECUTE_STATE, "Thread", origin="threading"),
        ),
        uses=(Target(_P + "asl.component.common.timeouts.timeout", "TimeoutSeconds.is_default_value"),),
        build=_build_untimed_states,
    ),
    Patch(
        name="action-names-cache",
        corrects="moto lists the response class's methods with inspect.getmembers for every API call.",
        targets=(Target("moto.core.responses", "method_names_from_class"),),
        build=_build_action_names,
    ),
    Patch(
        name="json-state-copy",
        corrects=(
            "moto copies state data with copy.deepcopy several times per state (input, result, "
            "ResultPath, Parameters, the evaluation stack): a fifth of a no-op workflow's CPU; "
            "a pickle round trip makes the same copy in C."
        ),
        targets=tuple(Target(_P + module, "copy", origin="copy") for module in _JSON_COPY_MODULES),
        build=_build_json_copy,
    ),
)
