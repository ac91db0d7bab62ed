"""The moto compatibility module: it must fail loudly when moto moves under it."""

from __future__ import annotations

import json

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


def test_every_patched_internal_still_exists_in_this_moto():
    # The attributes install() replaces, looked up directly: an upgrade that renames one fails here.
    from moto.stepfunctions import responses
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
    from moto.stepfunctions.parser.asl.eval import environment
    from moto.stepfunctions.parser.mocking import mock_config

    assert callable(responses.StepFunctionResponse.send_task_failure)
    assert callable(models.StepFunctionsParserBackend.start_execution)
    assert callable(distributed_iteration_component.DistributedIterationComponent._map_run)
    assert callable(environment.Environment.get_current_mocked_response)
    assert callable(mock_eval_utils._eval_mocked_response_throw)
    assert callable(mock_config._mock_test_case_from_raw)
    assert hasattr(retrier_decl, "time")


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
