"""The moto patches: they must fail loudly when moto moves under them, apply all or
nothing, and never wrap moto twice."""

from __future__ import annotations

import inspect
import json
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from pydantic import ValidationError

from relay.local import moto_patches
from relay.local.moto_patches import PATCHES, MotoPatchError, Patch, Target, engine, framework, speed


def test_supported_moto_range_is_enforced():
    # Given versions outside the range the patches were written against
    for version in ("5.2.4", "5.2.5", "5.2.7", "5.3.0", "6.0.0"):
        # Then the guard refuses them, naming the version and the file to re-check
        with pytest.raises(MotoPatchError, match=version.replace(".", r"\.") + ".*relay/local/moto_patches/"):
            moto_patches.check_moto_version(version)
    assert moto_patches.check_moto_version("5.2.6") == "5.2.6"


def test_pyproject_pins_moto_to_the_supported_range():
    # Given the local extra's moto requirement, as pip will resolve it
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (requirement,) = [
        Requirement(line)
        for line in pyproject["project"]["optional-dependencies"]["local"]
        if Requirement(line).name == "moto"
    ]
    # Then it allows exactly what the patches were written against: a fresh install never
    # brings a moto the guard refuses (5.2.6 did, under the old ">=5.2.5,<5.3")
    assert requirement.specifier == moto_patches.SUPPORTED_MOTO


def test_the_installed_moto_is_supported_and_install_is_idempotent():
    moto_patches.install()
    moto_patches.install()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as sts,
    )

    assert sts.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["bedrockagentcore"] == "bedrock-agentcore"


def test_a_moved_internal_is_named():
    # Given a patch whose target moto no longer defines
    gone = Patch(
        name="needs-a-gone-attribute",
        corrects="a test patch.",
        targets=(Target("moto.stepfunctions.responses", "StepFunctionResponse.gone_attribute"),),
        build=lambda value: (value,),
    )
    # Then the check names the patch and the attribute that is gone
    assert moto_patches.check([gone]) == [
        "patch 'needs-a-gone-attribute': target moto.stepfunctions.responses.StepFunctionResponse.gone_attribute: "
        "moto.stepfunctions.responses.StepFunctionResponse.gone_attribute is gone"
    ]


P = "moto.stepfunctions.parser."
#: Every moto internal moto_patches.install() patches or relies on: (module, class or None, name).
PATCHED = [
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_to_boto_request"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_from_boto_response"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_to_boto_request_value"),
    (P + "asl.component.state.exec.state_task.service.state_task_service_aws_sdk", None, "_SERVICE_ERROR_NAMES"),
    # the aws-sdk task inherits these hooks; moto_patches overrides them on StateTaskServiceAwsSdk
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_normalise_parameters"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_normalise_response"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_get_boto_service_name"),
    (P + "mocking.mock_config", None, "_mock_test_case_from_raw"),
    (P + "models", "StepFunctionsParserBackend", "start_execution"),
    (P + "backend.execution", "Execution", "_get_start_execution_worker"),
    (P + "backend.execution", "Execution", "start"),
    (P + "backend.execution", "Execution", "stop"),
    (P + "backend.execution", "BaseExecutionWorkerCommunication", "terminated"),
    (P + "backend.execution_worker", "ExecutionWorker", "_get_evaluation_environment"),
    (P + "backend.execution_worker", "ExecutionWorker", "_get_evaluation_entrypoint"),
    (P + "models", "StepFunctionsParserBackend", "_validate_definition"),
    ("moto.stepfunctions.responses", "StepFunctionResponse", "send_task_failure"),
    ("moto.stepfunctions.responses", "StepFunctionResponse", "stop_execution"),
    ("moto.stepfunctions.responses", "StepFunctionResponse", "describe_execution"),
    ("moto.stepfunctions.responses", "StepFunctionResponse", "get_execution_history"),
    ("moto.stepfunctions.responses", "StepFunctionResponse", "list_executions"),
    (P + "asl.component.state.exec.state_map.iteration.distributed_iteration_component", "DistributedIterationComponent", "_map_run"),
    (P + "asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker", "DistributedItemProcessorWorker", "_eval_job"),
    (P + "asl.eval.environment", "Environment", "get_current_mocked_response"),
    (P + "asl.eval.environment", "Environment", "set_error"),
    (P + "asl.component.state.exec.state_task.mock_eval_utils", None, "_eval_mocked_response_throw"),
    (P + "asl.eval.event.event_manager", "EventManager", "add_event"),
    (P + "asl.utils.boto_client", None, "boto_client_for"),
    (P + "asl.utils.json_path", None, "extract_json"),
    ("moto.s3.models", "S3Backend", "put_object"),
    ("moto.s3.models", "S3Backend", "delete_object"),
    ("moto.dynamodb.models", "DynamoDBBackend", "put_item"),
    ("moto.dynamodb.models", "DynamoDBBackend", "update_item"),
    ("moto.dynamodb.models", "DynamoDBBackend", "delete_item"),
]


def _defined_in_source(module: str, cls: str | None, name: str) -> bool:
    """Whether moto's *source file* defines ``name`` (in class ``cls``): read with ast,
    so what install() put there at run time cannot make this pass."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    scopes: list[ast.AST] = [tree]
    if cls is not None:
        scopes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls]
    for scope in scopes:
        for node in ast.iter_child_nodes(scope):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return True
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


@pytest.mark.parametrize(("module", "cls", "name"), PATCHED, ids=[f"{c or m.rsplit('.', 1)[1]}.{n}" for m, c, n in PATCHED])
def test_every_patched_internal_is_defined_by_this_moto_itself(module, cls, name):
    # An upgrade that renames or removes one fails here, before any execution misbehaves.
    assert _defined_in_source(module, cls, name), f"moto no longer defines {module}.{cls + '.' if cls else ''}{name}"


def test_the_source_check_fails_for_a_name_moto_does_not_define():
    assert not _defined_in_source("moto.stepfunctions.responses", "StepFunctionResponse", "redrive_execution")


def test_mock_config_rejects_a_response_with_both_return_and_throw(tmp_path):
    path = tmp_path / "mock.json"
    path.write_text(json.dumps({
        "StateMachines": {"sm": {"TestCases": {"c": {"S": "R"}}}},
        "MockedResponses": {"R": {"0": {"Return": {}, "Throw": {"Error": "E"}}}},
    }))
    with pytest.raises(ValidationError, match="exactly one of Return or Throw"):
        moto_patches.load_mock_config(path)


def test_mock_config_rejects_unknown_top_level_fields(tmp_path):
    path = tmp_path / "mock.json"
    path.write_text(json.dumps({"StateMachine": {}}))
    with pytest.raises(ValidationError, match="StateMachines"):
        moto_patches.load_mock_config(path)


def test_retry_time_scale_rejects_negative():
    with pytest.raises(ValueError, match="scale"):
        moto_patches.set_retry_time_scale(-1)


# ----- the registry: all or nothing, never twice ------------------------------------------------
def _snapshot(patches: tuple[Patch, ...] = PATCHES) -> dict[Target, tuple[bool, Any]]:
    """Per target: (stored on its owner itself, the object stored or inherited)."""
    import importlib

    shot: dict[Target, tuple[bool, Any]] = {}
    for patch in patches:
        for target in patch.targets:
            owner: Any = importlib.import_module(target.module)
            *path, name = target.attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            shot[target] = (name in vars(owner), inspect.getattr_static(owner, name, None))
    return shot


def _identical(a: dict[Target, tuple[bool, Any]], b: dict[Target, tuple[bool, Any]]) -> list[str]:
    """The targets whose stored object (or ownership) differs between two snapshots."""
    return [str(t) for t in a if a[t][0] != b[t][0] or a[t][1] is not b[t][1]]


@pytest.fixture
def pristine() -> Iterator[dict[Target, tuple[bool, Any]]]:
    """moto with no patch applied (its snapshot), and the patches applied again after."""
    moto_patches.uninstall()
    assert moto_patches.installed() == []
    yield _snapshot()
    moto_patches.uninstall()
    moto_patches.install()


def test_uninstall_puts_back_exactly_what_install_replaced(pristine):
    # When every patch is applied
    moto_patches.install()
    # Then every target changed (a target that did not would be a patch that does nothing)
    assert sorted(_identical(pristine, _snapshot())) == sorted(str(t) for p in PATCHES for t in p.targets)
    # And uninstall restores every original object, inherited ones by removing the override
    moto_patches.uninstall()
    assert _identical(pristine, _snapshot()) == []


def test_install_twice_wraps_nothing_twice(pristine):
    # Given the patches applied
    moto_patches.install()
    first = _snapshot()
    # When install runs again
    moto_patches.install()
    # Then every patched attribute is the very same object as after the first call
    assert _identical(first, _snapshot()) == []
    assert moto_patches.installed() == [patch.name for patch in PATCHES]


def test_a_missing_target_patches_nothing(pristine):
    # Given the real patches followed by one whose target moto does not define
    broken = Patch(
        name="needs-a-gone-action",
        corrects="a test patch.",
        targets=(Target("moto.stepfunctions.responses", "StepFunctionResponse.gone_action"),),
        build=lambda value: (value,),
    )
    # When install is asked for all of them
    with pytest.raises(MotoPatchError) as raised:
        moto_patches.install([*PATCHES, broken])
    # Then one error names the patch, the target and the installed moto version
    message = str(raised.value)
    assert "'needs-a-gone-action'" in message
    assert "StepFunctionResponse.gone_action" in message
    assert f"moto {moto.__version__}" in message
    # And nothing was patched, not even the patches listed before the broken one
    assert _identical(pristine, _snapshot()) == []
    assert moto_patches.installed() == []


def test_a_missing_module_and_a_missing_used_internal_are_named(pristine):
    broken = Patch(
        name="broken",
        corrects="a test patch.",
        targets=(Target("moto.no_such_module", "anything"),),
        uses=(Target("moto.stepfunctions.responses", "StepFunctionResponse.gone_helper"),),
        build=lambda value: (value,),
    )
    problems = moto_patches.check([broken])
    assert problems[0].startswith("patch 'broken': target moto.no_such_module.anything: module moto.no_such_module cannot be imported")
    assert problems[1] == (
        "patch 'broken': uses moto.stepfunctions.responses.StepFunctionResponse.gone_helper: "
        "moto.stepfunctions.responses.StepFunctionResponse.gone_helper is gone"
    )


def test_an_attribute_replaced_by_someone_else_is_refused(pristine, monkeypatch):
    # Given moto's send_task_failure already replaced by code that is not moto's
    from moto.stepfunctions.responses import StepFunctionResponse

    def foreign(self: Any) -> None:
        raise AssertionError("never called")

    monkeypatch.setattr(StepFunctionResponse, "send_task_failure", foreign)
    # Then install refuses, naming the replacement, and patches nothing
    with pytest.raises(MotoPatchError, match=r"send-task-failure-cause.*StepFunctionResponse\.send_task_failure is \S*foreign, not the moto original"):
        moto_patches.install()
    assert moto_patches.installed() == []


def test_an_attribute_moto_now_defines_is_refused_for_a_patch_that_adds_it(pristine, monkeypatch):
    # Given a moto that implements RedriveExecution itself
    from moto.stepfunctions.responses import StepFunctionResponse

    monkeypatch.setattr(StepFunctionResponse, "redrive_execution", lambda self: None, raising=False)
    # Then the redrive patch is refused, saying moto implements it
    problems = moto_patches.check()
    assert any("'redrive-execution'" in p and "now exists in moto" in p for p in problems), problems


def test_a_patch_whose_build_raises_restores_every_original(pristine):
    # Given the real patches followed by one whose build fails
    def explode(value: Any) -> tuple[Any, ...]:
        raise RuntimeError("build failed")

    exploding = Patch(
        name="explodes-while-building",
        corrects="a test patch.",
        targets=(Target("moto.stepfunctions.responses", "StepFunctionResponse.describe_state_machine"),),
        build=explode,
    )
    # When install applies them: every real patch is applied before the last one fails
    with pytest.raises(MotoPatchError, match=r"'explodes-while-building' failed while being applied \(RuntimeError: build failed\)"):
        moto_patches.install([*PATCHES, exploding])
    # Then every original is back
    assert _identical(pristine, _snapshot()) == []
    assert moto_patches.installed() == []


class _Frozen(type):
    """A metaclass refusing new values for ``refuses``: setattr fails midway through a patch."""

    def __setattr__(cls, name: str, value: Any) -> None:
        if name == "refuses":
            raise TypeError(f"{cls.__name__}.{name} cannot be set")
        super().__setattr__(name, value)


def test_a_patch_that_fails_midway_through_its_targets_restores_every_original(pristine, monkeypatch):
    # Given a module whose second target refuses to be replaced
    module = types.ModuleType("relay_test_frozen_owner")

    def refuses(self: Any) -> None:
        raise AssertionError("never called")

    refuses.__module__ = module.__name__
    module.Owner = _Frozen("Owner", (), {"refuses": refuses})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.describe_state_machine
    halfway = Patch(
        name="fails-halfway",
        corrects="a test patch.",
        targets=(
            Target("moto.stepfunctions.responses", "StepFunctionResponse.describe_state_machine"),
            Target(module.__name__, "Owner.refuses", origin=module.__name__),
        ),
        build=lambda first, second: (lambda self: None, lambda self: None),
    )
    # When its first target has been replaced and the second fails
    with pytest.raises(MotoPatchError, match=r"'fails-halfway' failed while being applied \(TypeError"):
        moto_patches.install([*PATCHES, halfway])
    # Then the first target and every real patch are restored
    assert StepFunctionResponse.describe_state_machine is original
    assert _identical(pristine, _snapshot()) == []


def test_no_target_belongs_to_two_patches():
    targets = [target for patch in PATCHES for target in patch.targets]
    assert len(targets) == len(set(targets))


def test_two_patches_replacing_one_target_are_refused():
    target = Target("moto.stepfunctions.responses", "StepFunctionResponse.describe_state_machine")
    one = Patch(name="one", corrects="a test patch.", targets=(target,), build=lambda v: (v,))
    two = Patch(name="two", corrects="a test patch.", targets=(target,), build=lambda v: (v,))
    assert "patch 'two': target " + str(target) + " is also a target of patch 'one'" in moto_patches.check([one, two])


def test_every_patch_says_what_it_corrects_and_cites_only_moto_issues():
    for patch in PATCHES:
        assert patch.corrects.strip(), patch.name
        assert patch.corrects.rstrip().endswith("."), patch.name  # one sentence
        assert patch.moto_issue is None or patch.moto_issue.startswith("https://github.com/getmoto/moto/issues/")
        # build takes one original per target, in order
        parameters = inspect.signature(patch.build).parameters.values()
        if not any(p.kind is p.VAR_POSITIONAL for p in parameters):
            assert len(parameters) == len(patch.targets), patch.name
    assert len({patch.name for patch in PATCHES}) == len(PATCHES)


def test_a_patch_must_say_what_it_corrects():
    with pytest.raises(ValueError, match="corrects"):
        Patch(name="silent", corrects=" ", targets=(Target("m", "a"),), build=lambda v: (v,))
    with pytest.raises(ValueError, match="moto_issue"):
        Patch(name="x", corrects="a test patch.", targets=(Target("m", "a"),), build=lambda v: (v,), moto_issue="#1")


# ----- the speed patches: same results, less work ------------------------------------------------
def _copy_calls(module: str) -> set[str]:
    """The attributes of ``copy`` that moto's *source* of ``module`` uses (ast)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "copy"
    }


@pytest.mark.parametrize("module", speed._JSON_COPY_MODULES)
def test_the_json_copy_modules_use_only_deepcopy_of_copy(module):
    # The patch gives these modules a `copy` that has only deepcopy: anything else would fail at run time.
    assert _copy_calls(framework._P + module) == {"deepcopy"}


def test_the_copy_source_check_sees_other_copy_functions():
    # control: a moto module that also calls copy.copy is caught
    assert _copy_calls("moto.ec2.models.vpcs") - {"deepcopy"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_json_deepcopy_is_an_independent_equal_copy(value):
    import copy

    copied = moto_patches.json_deepcopy(value)
    assert copied == copy.deepcopy(value)
    # no container is shared with the original
    originals = {id(v) for v in _containers(value)}
    assert not originals & {id(v) for v in _containers(copied)}


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, (dict, list)):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from _containers(item)


def test_json_deepcopy_copies_like_deepcopy_for_other_objects_and_shared_references():
    import datetime
    import threading

    when = [datetime.datetime(2026, 1, 2, 3, 4, 5)]
    box = {"set": {1, 2}, "when": when}
    copied = moto_patches.json_deepcopy(box)
    assert copied == box and copied["set"] is not box["set"] and copied["when"] is not when
    # shared references stay shared, as with copy.deepcopy (with or without a memo)
    shared: list[int] = [1]
    for twice in (moto_patches.json_deepcopy([shared, shared]), moto_patches.json_deepcopy([shared, shared], {})):
        assert twice[0] is twice[1] and twice[0] is not shared
    # a value pickle refuses goes to copy.deepcopy, which copies what it can and says what it cannot
    lock = threading.Lock()
    assert moto_patches.json_deepcopy({"f": len})["f"] is len
    with pytest.raises(TypeError):
        moto_patches.json_deepcopy({"lock": lock})


def test_result_path_jsonpath_is_parsed_once():
    moto_patches.install()
    from moto.stepfunctions.parser.asl.component.common.path import result_path

    assert result_path.parse("$.a.b") is result_path.parse("$.a.b")


def test_a_loopback_service_client_is_unsigned_and_unstubbed(monkeypatch):
    # Given Lambda answered by a local server, and moto's stubber recording what reaches it
    # (no server is needed: every request is answered before it is sent)
    from botocore.awsrequest import AWSResponse
    from moto.core.models import botocore_stubber
    from moto.stepfunctions.parser.asl.utils import boto_client

    stubbed: list[str] = []
    sent: list[Any] = []

    def answer(url: str, body: bytes) -> AWSResponse:
        return AWSResponse(url, 200, {}, types.SimpleNamespace(stream=lambda: iter([body])))

    def stub(self: Any, event_name: str, request: Any, **_: Any) -> AWSResponse:
        stubbed.append(request.url)
        return answer(request.url, b"<ListAllMyBucketsResult/>")

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return answer(request.url, b"{}")

    moto_patches.install()
    monkeypatch.setattr(type(botocore_stubber), "__call__", stub)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
    with moto.mock_aws():
        client = boto_client.boto_client_for("us-east-1", "lambda")
        client.meta.events.register("before-send.lambda", capture)
        client.invoke(FunctionName="f", Payload=b"{}")
        # Then the request goes out unsigned, with a fixed User-Agent, past moto's stubber
        assert stubbed == [] and len(sent) == 1
        boto_client.boto_client_for("us-east-1", "s3").list_buckets()
    assert "Authorization" not in sent[0].headers
    assert sent[0].headers["User-Agent"].startswith(b"relay-local-engine")
    # And a service moto answers keeps moto's client: through the stubber
    assert len(stubbed) == 1 and "s3" in stubbed[0]


def test_executions_started_together_parse_their_definition_once(monkeypatch):
    # Given a definition nobody has parsed yet, and a parser that counts its calls (and is slow)
    import threading
    import time

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    moto_patches.install()
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": time.time_ns(), "End": True}}})
    real_parse = AmazonStateLanguageParser.parse
    calls: list[str] = []

    def counting_parse(text: str) -> Any:
        calls.append(text)
        time.sleep(0.05)  # long enough for every thread to ask while the first parse runs
        return real_parse(text)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting_parse))
    worker = types.SimpleNamespace(
        _evaluation_details=types.SimpleNamespace(state_machine_details=types.SimpleNamespace(definition=definition))
    )
    programs: list[Any] = []
    # When eight executions ask for it at once
    threads = [
        threading.Thread(target=lambda: programs.append(ExecutionWorker._get_evaluation_entrypoint(worker)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then it is parsed once and every execution gets that one program
    assert calls == [definition]
    assert len(programs) == 8 and all(p is programs[0] for p in programs)


def test_a_state_machine_is_parsed_once_for_creation_and_its_executions(monkeypatch, aws_credentials):
    # Given a parser that counts its calls, and a definition nobody has parsed yet
    import time

    import boto3
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    moto_patches.install()
    real_parse = AmazonStateLanguageParser.parse
    calls: list[str] = []

    def counting_parse(text: str) -> Any:
        calls.append(text)
        return real_parse(text)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting_parse))
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": time.time_ns(), "End": True}}})
    role = "arn:aws:iam::123456789012:role/sfn"
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions")
        # When the state machine is created and run twice
        arn = sfn.create_state_machine(name="parsed-once", definition=definition, roleArn=role)["stateMachineArn"]
        for run in range(2):
            execution = sfn.start_execution(stateMachineArn=arn, name=f"run-{run}")["executionArn"]
            deadline = time.monotonic() + 10
            while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
        # Then the text was parsed once, at creation
        assert calls == [definition]
        # And a definition moto refuses still gets moto's own error, InvalidDefinition (moto
        # 5.2.5 sent it without a code; 5.2.6's serializer names it)
        with pytest.raises(ClientError, match=r"ASLParserException line 1:42, at \"Nope\"") as refused:
            sfn.create_state_machine(name="broken", definition='{"StartAt": "P", "States": {"P": {"Type": "Nope"}}}', roleArn=role)
        assert refused.value.response["Error"]["Code"] == "InvalidDefinition"


def test_map_iterations_converting_aws_sdk_parameters_at_once_share_one_service_model_loader(monkeypatch):
    # Given the aws-sdk casing patch freshly built (its botocore session has no loader yet),
    # and a botocore Loader slow to make, so that threads asking at once overlap
    import threading
    import time

    import botocore.loaders

    made: list[object] = []
    real_init = botocore.loaders.Loader.__init__

    def slow_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        time.sleep(0.05)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.loaders.Loader, "__init__", slow_init)
    normalise_parameters, _, _ = engine._build_boto_casing(None, None, None)
    shapes: list[Any] = []
    task = types.SimpleNamespace(
        _get_boto_service_name=lambda: "bedrock-agentcore",
        resource=types.SimpleNamespace(api_action="invokeAgentRuntime"),
        _to_boto_request=lambda parameters, shape: shapes.append(shape),
    )
    # When eight Map iterations convert their Parameters at once
    threads = [threading.Thread(target=normalise_parameters, args=(task, {})) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one loader was made (a botocore session is not thread-safe), and each got the shape
    assert len(made) == 1
    assert len(shapes) == 8 and {shape.name for shape in shapes} == {"InvokeAgentRuntimeRequest"}


def test_remembered_stubber_routes_answer_as_moto_does():
    # Given moto's own process_request and the patched one, and requests to a mocked
    # service, a bucket URL, an AWS service moto lacks, and a non-AWS URL
    from botocore.awsrequest import AWSPreparedRequest
    from moto.core.botocore_stubber import BotocoreStubber

    moto_patches.install()
    original = framework._applied[Target("moto.core.botocore_stubber", "BotocoreStubber.process_request")].slot.value
    sfn = {"X-Amz-Target": "AWSStepFunctions.ListStateMachines", "Content-Type": "application/x-amz-json-1.0",
           "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/states/aws4_request"}  # fmt: skip
    requests = [
        ("POST", "https://states.us-east-1.amazonaws.com/", sfn, b"{}"),
        ("GET", "https://s3.us-east-1.amazonaws.com/", {}, b""),
        ("GET", "https://bucket.s3.us-east-1.amazonaws.com/key", {}, b""),
        ("GET", "https://nothing-here.us-east-1.amazonaws.com/", {}, b""),
        ("GET", "http://127.0.0.1:9/elsewhere", {}, b""),
    ]
    stubber = BotocoreStubber()
    with moto.mock_aws():
        for method, url, headers, body in requests * 2:  # the second time from the remembered routes
            request = AWSPreparedRequest(method=method, url=url, headers=headers, body=body, stream_output=False)
            ours, theirs = stubber.process_request(request), original(stubber, request)
            # Then both answer alike (request ids differ; status and body do not)
            assert (ours is None) == (theirs is None), url
            if ours is not None:
                assert (ours[0], _no_ids(ours[2])) == (theirs[0], _no_ids(theirs[2])), url


def _no_ids(body: Any) -> bytes:
    import re

    text = body.encode() if isinstance(body, str) else bytes(body)
    return re.sub(rb"<(RequestId|HostId)>[^<]*</(RequestId|HostId)>", b"", text)


def test_action_names_are_kept_per_class_and_see_a_method_added_later():
    # Given the patches, and a response class moto has not seen
    from moto.core import responses, utils

    moto_patches.install()

    class Answers(responses.BaseResponse):
        def first_action(self) -> str:
            return "first"

    # When its action names are asked for twice, Then moto's own answer is computed once
    names = responses.method_names_from_class(Answers)
    assert names == utils.method_names_from_class(Answers) and "first_action" in names
    assert responses.method_names_from_class(Answers) is names
    # And an action added later (as a patch adds redrive_execution) is found
    Answers.second_action = lambda self: "second"  # type: ignore[attr-defined]
    assert "second_action" in responses.method_names_from_class(Answers)


def test_every_patch_is_documented_in_local_runtime_md():
    # docs/local-runtime.md gives each patch's reason, module and guarding test: a new patch is added there too
    page = (Path(__file__).parents[2] / "docs" / "local-runtime.md").read_text()
    assert [patch.name for patch in PATCHES if f"`{patch.name}`" not in page] == []
    modules = {patch.build.__module__.rsplit(".", 1)[1] for patch in PATCHES}
    assert [module for module in sorted(modules) if f"(`{module}.py`)" not in page] == []
