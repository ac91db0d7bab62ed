"""The moto compatibility module: it must fail loudly when moto moves under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from relay.local import compat


def test_supported_moto_range_is_enforced():
    # Given versions outside the range the patches were written against
    for version in ("5.2.4", "5.3.0", "6.0.0"):
        # Then the guard refuses them, naming the version and the file to re-check
        with pytest.raises(compat.MotoCompatError, match=version.replace(".", r"\.") + ".*compat.py"):
            compat.check_moto_version(version)
    assert compat.check_moto_version("5.2.5") == "5.2.5"


def test_the_installed_moto_is_supported_and_install_is_idempotent():
    compat.install()
    compat.install()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as sts,
    )

    assert sts.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["bedrockagentcore"] == "bedrock-agentcore"


def test_a_moved_internal_is_named():
    class Moved:
        __name__ = "Moved"

    with pytest.raises(compat.MotoCompatError, match=r"Moved\.gone_attribute is gone"):
        compat._require(Moved, "gone_attribute")


P = "moto.stepfunctions.parser."
#: Every moto internal compat.install() patches or relies on: (module, class or None, name).
PATCHED = [
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_to_boto_request"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_from_boto_response"),
    (P + "asl.component.state.exec.state_task.service.state_task_service", "StateTaskService", "_to_boto_request_value"),
    (P + "asl.component.state.exec.state_task.service.state_task_service_aws_sdk", None, "_SERVICE_ERROR_NAMES"),
    # the aws-sdk task inherits these hooks; compat overrides them on StateTaskServiceAwsSdk
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
        compat.load_mock_config(path)


def test_mock_config_rejects_unknown_top_level_fields(tmp_path):
    path = tmp_path / "mock.json"
    path.write_text(json.dumps({"StateMachine": {}}))
    with pytest.raises(ValidationError, match="StateMachines"):
        compat.load_mock_config(path)


def test_retry_time_scale_rejects_negative():
    with pytest.raises(ValueError, match="scale"):
        compat.set_retry_time_scale(-1)
