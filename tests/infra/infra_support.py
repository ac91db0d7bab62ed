"""Helpers shared by the infra tests (imported as ``infra_support``; tests/ has no packages)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The context the tests synthesize with: cdk.json's defaults plus an approver address.
TEST_EMAIL = "approver@example.com"


def cdk_context(**overrides: Any) -> dict[str, Any]:
    ctx = json.loads((ROOT / "cdk.json").read_text())["context"]
    ctx["approverEmail"] = TEST_EMAIL
    ctx.update(overrides)
    return ctx


@dataclass
class Synth:
    """One synthesized app: the stack object, its template (dict and assertions), the outdir."""

    stack: Any
    template: dict[str, Any]
    assertions: Any
    outdir: Path
    template_path: Path

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def logical_id(self, construct: Any) -> str:
        cfn = construct if hasattr(construct, "cfn_resource_type") else construct.node.default_child
        return str(self.stack.get_logical_id(cfn))
