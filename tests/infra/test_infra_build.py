"""Context validation and the Docker-free layer build (no synth needed)."""

from __future__ import annotations

import json
import re
import tomllib
import zipfile

import pytest
from aws_cdk import App
from infra_support import cdk_context
from packaging.requirements import Requirement

from stacks import layer_build, regions
from stacks.settings import ContextError, from_context

pytestmark = pytest.mark.infra


def test_cdk_json_defaults_are_valid() -> None:
    s = from_context(App(context=cdk_context(approverEmail="")))
    assert s.approver_email == ""
    assert s.is_inference_profile and s.foundation_model_id == s.model_id.split(".", 1)[1]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("approverEmail", "not-an-email", "approverEmail"),
        ("researchConcurrency", 0, "researchConcurrency"),
        ("toleratedFailurePercentage", 101, "toleratedFailurePercentage"),
        ("maxRevisions", 11, "maxRevisions"),
        ("logRetentionDays", 31, "logRetentionDays"),
        ("guardrailId", "abc123", "guardrailVersion"),
        ("approvalTimeoutSeconds", 10, "approvalTimeoutSeconds"),
        ("approverEmail", "a@b", "approverEmail"),
        ("approverEmail", "two@example.com, three@example.com", "approverEmail"),
        ("guardrailId", "Bad Id!", "guardrailId"),
        ("guardrailVersion", "v1", "guardrailVersion"),
        ("knowledgeBaseId", "kb-123", "knowledgeBaseId"),
        ("modelId", "us amazon nova", "modelId"),
        ("stackName", "1relay", "stackName"),
        ("researchConcurrency", "three", "researchConcurrency"),
        ("apiGatewayCloudWatchRole", "maybe", "apiGatewayCloudWatchRole"),
    ],
)
def test_bad_context_fails_the_synth_naming_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ContextError, match=message) as err:
        from_context(App(context=cdk_context(**{key: value})))
    assert "\n" not in str(err.value)


def test_every_bad_key_is_named_in_the_one_line() -> None:
    # Given two malformed values and one out of range
    context = cdk_context(researchConcurrency="three", maxRevisions=11, apiGatewayCloudWatchRole="maybe")
    # When the context is read / Then one line names each key with its rule
    with pytest.raises(ContextError) as err:
        from_context(App(context=context))
    message = str(err.value)
    assert message.startswith("invalid context: ") and "\n" not in message
    assert "researchConcurrency must be a number, not 'three'" in message
    assert "maxRevisions must be between 0 and 10" in message
    assert "apiGatewayCloudWatchRole must be true or false, not 'maybe'" in message


def test_a_key_left_out_of_the_context_takes_the_cdk_json_default(monkeypatch) -> None:
    from stacks.settings import Settings

    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    # Given the defaults in cdk.json and an app whose context names none of the keys
    defaults = json.loads((layer_build.ROOT / "cdk.json").read_text())["context"]
    bare = from_context(App())
    # Then every setting equals its cdk.json default
    for name, field in Settings.model_fields.items():
        assert getattr(bare, name) == defaults[str(field.validation_alias)], name


def test_defaults_that_cannot_fit_a_standard_execution_fail_the_synth_in_one_line() -> None:
    # A day-long work budget plus 11 approval rounds of 3,000,000 s is more than a year: the
    # execution timeout could not hold a request left at its defaults.
    with pytest.raises(ContextError) as err:
        from_context(App(context=cdk_context(approvalTimeoutSeconds=3_000_000, maxRevisions=10)))
    message = str(err.value)
    assert "\n" not in message
    assert "approvalTimeoutSeconds 3000000 × (maxRevisions 10 + 1) + 86400 s = 33086400 s" in message
    assert "31536000 s (one year)" in message
    assert from_context(App(context=cdk_context(approvalTimeoutSeconds=2_000_000, maxRevisions=10))).max_revisions == 10


def test_context_values_given_as_strings_are_converted() -> None:
    # `-c key=value` passes strings
    s = from_context(App(context=cdk_context(maxRevisions="3", apiGatewayCloudWatchRole="False", apiThrottleRate="2.5")))
    assert (s.max_revisions, s.api_gateway_cloudwatch_role, s.api_throttle_rate) == (3, False, 2.5)


@pytest.mark.parametrize(
    ("model_id", "region"),
    [
        ("us.amazon.nova-pro-v1:0", "eu-west-1"),
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", "us-east-1"),
        ("apac.amazon.nova-pro-v1:0", "eu-central-1"),
        ("us.amazon.nova-pro-v1:0", "us-gov-west-1"),
        ("global.anthropic.claude-sonnet-4-6", "us-gov-west-1"),
    ],
)
def test_inference_profile_that_does_not_serve_the_region_fails(
    monkeypatch, model_id: str, region: str
) -> None:
    # Given a deploy Region (what the CDK CLI passes) and a profile of another geography
    monkeypatch.setenv("CDK_DEFAULT_REGION", region)
    # Then reading the context fails naming modelId, the prefix and the Region
    with pytest.raises(
        ContextError, match=rf"modelId .*{model_id.split('.')[0]}\. inference profile .*{region}"
    ):
        from_context(App(context=cdk_context(modelId=model_id)))


@pytest.mark.parametrize(
    ("model_id", "region"),
    [
        ("us.amazon.nova-pro-v1:0", "us-east-1"),
        ("eu.amazon.nova-pro-v1:0", "eu-west-1"),
        ("apac.amazon.nova-pro-v1:0", "ap-southeast-1"),
        ("global.anthropic.claude-sonnet-4-6", "eu-west-1"),
        ("amazon.nova-pro-v1:0", "eu-west-1"),
    ],
)
def test_inference_profile_of_the_regions_geography_is_accepted(
    monkeypatch, model_id: str, region: str
) -> None:
    monkeypatch.setenv("CDK_DEFAULT_REGION", region)
    assert from_context(App(context=cdk_context(modelId=model_id))).model_id == model_id


def test_profile_check_uses_the_stacks_own_region_first(monkeypatch) -> None:
    from aws_cdk import Environment, Stack

    monkeypatch.setenv("CDK_DEFAULT_REGION", "us-east-1")
    stack = Stack(
        App(context=cdk_context()), "S", env=Environment(account="000000000000", region="eu-west-1")
    )
    with pytest.raises(ContextError, match="eu-west-1"):
        from_context(stack)


@pytest.mark.parametrize("region", ["af-south-1", "me-central-1", "ap-northeast-3", "cn-north-1"])
def test_a_region_where_agentcore_runtime_is_not_documented_fails_in_one_line(monkeypatch, region: str) -> None:
    # Given a deploy Region missing from stacks/regions.py (with a model that needs no profile)
    monkeypatch.setenv("CDK_DEFAULT_REGION", region)
    # Then reading the context fails in one line naming the Region, the table and its date
    with pytest.raises(ContextError) as err:
        from_context(App(context=cdk_context(modelId="amazon.nova-pro-v1:0")))
    message = str(err.value)
    assert "\n" not in message
    assert f"deploy Region {region}: AgentCore Runtime" in message
    assert f"stacks/regions.py, checked {regions.CHECKED}" in message and "us-east-1" in message


def test_every_listed_region_is_accepted_and_the_table_says_when_it_was_checked(monkeypatch) -> None:
    import datetime

    datetime.date.fromisoformat(regions.CHECKED)
    assert {"us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2"} <= set(regions.AGENTCORE_REGIONS)
    for region in regions.AGENTCORE_REGIONS:
        assert regions.region_problem(region) is None, region
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-3")
    assert from_context(App(context=cdk_context(modelId="amazon.nova-pro-v1:0"))).model_id == "amazon.nova-pro-v1:0"


def test_synth_with_a_bad_context_value_prints_one_line_naming_the_key(tmp_path) -> None:
    import subprocess
    import sys

    from stacks.offline_env import offline_env

    # Given the CDK app run as the CLI runs it, deploying to eu-west-1 with the default us. model
    env = offline_env(tmp_path) | {"CDK_DEFAULT_REGION": "eu-west-1", "CDK_OUTDIR": str(tmp_path / "out"),
                                   "CDK_CONTEXT_JSON": json.dumps(cdk_context())}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "stacks.app"], cwd=layer_build.ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    # Then it exits 1 with one line on stderr naming the key and the Region, and no traceback
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("relay: invalid context: modelId"), result.stderr
    assert "eu-west-1" in lines[0] and "Traceback" not in result.stderr


def test_synth_to_a_region_without_agentcore_prints_one_line_naming_it(tmp_path) -> None:
    import subprocess
    import sys

    from stacks.offline_env import offline_env

    # Given the CDK app run as the CLI runs it, deploying to a Region AgentCore is not documented in
    env = offline_env(tmp_path) | {"CDK_DEFAULT_REGION": "af-south-1", "CDK_OUTDIR": str(tmp_path / "out"),
                                   "CDK_CONTEXT_JSON": json.dumps(cdk_context(modelId="amazon.nova-pro-v1:0"))}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "stacks.app"], cwd=layer_build.ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    # Then it exits 1 with one line naming the Region, and no traceback
    assert result.returncode == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("relay: invalid context: deploy Region af-south-1"), result.stderr
    assert "Traceback" not in result.stderr


def test_layers_and_bundle_are_built_from_the_locks_with_the_entry_point(artifacts) -> None:
    art = layer_build.build_all()
    manifest = json.loads((layer_build.BUILD_DIR / f"layer-agents-{art.deps_key}.json").read_text())
    assert manifest["bytes"] == art.deps_layer_bytes
    assert manifest["packages"] == layer_build.locked(layer_build.AGENTS_LOCK)
    with zipfile.ZipFile(art.deps_layer_zip) as zf:
        names = zf.namelist()
    assert all(n.startswith("python/") for n in names)
    assert not [n for n in names if n.startswith("python/botocore/")], "botocore is provided by the runtime"
    assert any(n.startswith("python/pydantic_core/") and n.endswith(".so") and "aarch64" in n for n in names)
    assert any(n.startswith("python/strands/") for n in names)
    # the offline model's libraries are not deployed
    assert not [n for n in names if n.startswith(("python/sklearn/", "python/scipy/", "python/yake/"))]
    with zipfile.ZipFile(art.slim_layer_zip) as zf:
        slim = zf.namelist()
    assert any(n.startswith("python/aws_lambda_powertools/") for n in slim)
    assert not [n for n in slim if n.startswith(("python/strands/", "python/numpy/", "python/botocore/"))]
    with zipfile.ZipFile(art.agent_bundle_zip) as zf:
        names = zf.namelist()
        main = zf.read(layer_build.AGENT_ENTRYPOINT).decode()
    assert "from relay_agents.agentcore_app import app" in main
    assert "relay_agents/agentcore_app.py" in names and "relay_core/__init__.py" in names
    assert any(n.startswith("botocore/") for n in names), "the agent bundle carries its own boto3"
    assert any(n.startswith("bedrock_agentcore/") for n in names)
    assert (art.code_layer_dir / "python" / "relay_core" / "__init__.py").exists()
    assert (art.agents_code_dir / "python" / "relay_agents" / "agentcore_app.py").exists()


LOCKS = (layer_build.SLIM_LOCK, layer_build.AGENTS_LOCK, layer_build.RUNTIME_LOCK)


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_locked_package_is_pinned_with_hashes(lock) -> None:
    # Given a lock file, Then every requirement is name==version followed by sha256 hashes
    entries = re.split(r"\n(?=[^\s#])", lock.read_text())
    pins = [e for e in entries if e.strip() and not e.startswith("#")]
    assert len(pins) == len(layer_build.locked(lock)) >= 5
    for entry in pins:
        assert re.match(r"[a-z0-9._-]+==[^\s\\]+ ", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_locks_satisfy_pyproject_ranges_and_their_inputs(lock) -> None:
    # Given pyproject's ranges and the lock's .in file
    ranges = {Requirement(r).name.lower(): Requirement(r) for r in
              tomllib.loads((layer_build.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}  # fmt: skip
    pins = layer_build.locked(lock)
    inputs = []
    source = lock.with_suffix(".in")
    while True:
        lines = [
            ln.strip() for ln in source.read_text().splitlines() if ln.strip() and not ln.startswith("#")
        ]
        inputs += [Requirement(ln) for ln in lines if not ln.startswith("-r")]
        nested = [ln.split(None, 1)[1] for ln in lines if ln.startswith("-r")]
        if not nested:
            break
        source = source.with_name(nested[0])
    # Then every input is locked at a version inside its own range and pyproject's
    assert inputs
    for req in inputs:
        name = req.name.lower()
        assert name in pins, f"{name} is not in {lock.name}: run `make lock`"
        assert pins[name] in req.specifier, (name, pins[name], str(req.specifier))
        assert name in ranges, f"{name}: add it to pyproject dependencies"
        assert pins[name] in ranges[name].specifier, (name, pins[name], str(ranges[name].specifier))


def test_build_is_cached_by_content(artifacts) -> None:
    first = layer_build.build_all()
    second = layer_build.build_all()
    assert first == second
    assert layer_build.deps_key() == first.deps_key


def test_api_gateway_account_role_can_be_left_to_the_account(tmp_path, artifacts) -> None:
    from aws_cdk.assertions import Template

    from stacks.relay_stack import RelayStack

    # Given an account that already has API Gateway's CloudWatch role
    app = App(context=cdk_context(apiGatewayCloudWatchRole="false"), outdir=str(tmp_path))
    stack = RelayStack(app, "Relay", artifacts=layer_build.build_all())
    template = Template.from_stack(stack)
    # Then the stack creates no account setting and no role for it
    template.resource_count_is("AWS::ApiGateway::Account", 0)
    assert "AmazonAPIGatewayPushToCloudWatchLogs" not in json.dumps(template.to_json())


def test_layer_build_prints_each_function_kind_against_the_budget(monkeypatch, artifacts) -> None:
    from stacks import budget

    art = layer_build.build_all()
    lines: list[str] = []
    # Given the built artifacts, When the build prints its budget
    assert budget.print_artifact_budget(art, out=lines.append) == 0
    # Then each kind of function and the bundle is a line with its total and the 75 % budget
    text = "\n".join(lines)
    assert "agent function" in text and "slim function" in text and "agent bundle" in text
    assert text.count("budget (75 %) 196,608,000 B: ok") == 2
    # And a budget the artifacts exceed makes it fail
    monkeypatch.setattr(budget, "LAMBDA_BUDGET", art.slim_layer_bytes)
    assert budget.print_artifact_budget(art, out=lines.append) == 1
