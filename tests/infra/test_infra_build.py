"""Context validation and the Docker-free layer build (no synth needed)."""

from __future__ import annotations

import json
import zipfile

import pytest
from aws_cdk import App
from infra_support import cdk_context

from stacks import layer_build
from stacks.settings import from_context

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
    ],
)
def test_bad_context_fails_the_synth_naming_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_context(App(context=cdk_context(**{key: value})))


def test_layers_fit_lambdas_unzipped_limit_and_bundle_has_the_entry_point() -> None:
    art = layer_build.build_all()
    manifest = json.loads((layer_build.BUILD_DIR / f"deps-{art.deps_key}.json").read_text())
    total = art.deps_layer_bytes + art.code_layer_bytes
    assert manifest["layer_bytes"] == art.deps_layer_bytes
    assert total < layer_build.LAMBDA_UNZIPPED_LIMIT - 1_000_000, f"{total:,} bytes unzipped"
    with zipfile.ZipFile(art.deps_layer_zip) as zf:
        names = zf.namelist()
    assert all(n.startswith("python/") for n in names)
    assert not [n for n in names if n.startswith("python/botocore/")], "botocore is provided by the runtime"
    assert any(n.startswith("python/pydantic_core/") and n.endswith(".so") and "aarch64" in n for n in names)
    with zipfile.ZipFile(art.agent_bundle_zip) as zf:
        names = zf.namelist()
        main = zf.read(layer_build.AGENT_ENTRYPOINT).decode()
    assert "from relay_agents.runtime import app" in main
    assert "relay_agents/runtime.py" in names and "relay_core/__init__.py" in names
    assert any(n.startswith("botocore/") for n in names), "the agent bundle carries its own boto3"
    assert (art.code_layer_dir / "python" / "relay_core" / "__init__.py").exists()


def test_build_is_cached_by_content() -> None:
    first = layer_build.build_all()
    second = layer_build.build_all()
    assert first == second
    assert layer_build.deps_key() == first.deps_key
