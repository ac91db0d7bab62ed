"""The size budget of every deployed package, checked on the built artifacts.

Lambda: a function's code plus all its layers, unzipped, may not exceed 262,144,000 bytes
(`Lambda quotas <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>`_,
"Deployment package (.zip file archive) size ... 250 MB (unzipped)"). Relay keeps every
function at or under **75 %** of that (:data:`LAMBDA_BUDGET`, 196,608,000 bytes), so a
dependency release that grows a few MB fails here, offline, instead of at deploy time.

AgentCore direct code deployment: the code zip may be 250 MB zipped and 750 MB unzipped
(`AgentCore quotas <https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/bedrock-agentcore-limits.html>`_,
"Code package size"); the same 75 % margin applies to both (:data:`AGENTCORE_ZIPPED_BUDGET`,
:data:`AGENTCORE_UNZIPPED_BUDGET`, decimal MB: the stricter reading).

``python -m stacks.budget CDK_OUT`` checks a synthesized cloud assembly (what ``cdk deploy``
would upload): one line per function and for the runtime bundle, exit 1 over budget.
``python -m stacks.budget --artifacts`` checks the built artifacts (:mod:`stacks.layer_build`,
built first if need be) before any synth: each kind of function's largest total.
"""

from __future__ import annotations

import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layer_build import ROOT, Artifacts, build_all

#: Lambda's limit on a function plus its layers, unzipped, in bytes
#: (262,144,000 = "250 MB", `Lambda quotas
#: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>`_).
LAMBDA_UNZIPPED_LIMIT = 262_144_000
#: Share of each documented limit Relay allows itself.
BUDGET_FRACTION = 0.75
#: 75 % of Lambda's 262,144,000-byte unzipped limit (function code + all its layers).
LAMBDA_BUDGET = int(LAMBDA_UNZIPPED_LIMIT * BUDGET_FRACTION)
#: AgentCore code package quotas (decimal MB) and their 75 % budgets.
AGENTCORE_ZIPPED_LIMIT = 250_000_000
AGENTCORE_UNZIPPED_LIMIT = 750_000_000
AGENTCORE_ZIPPED_BUDGET = int(AGENTCORE_ZIPPED_LIMIT * BUDGET_FRACTION)
AGENTCORE_UNZIPPED_BUDGET = int(AGENTCORE_UNZIPPED_LIMIT * BUDGET_FRACTION)
_MB = 1_000_000


@dataclass(frozen=True)
class PackageSize:
    """One deployed package: ``name``, its unzipped ``total`` bytes, the ``budget`` in bytes,
    and ``parts`` (asset name → unzipped bytes) that make up the total."""

    name: str
    total: int
    budget: int
    parts: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.total <= self.budget

    def line(self) -> str:
        limit = self.budget / BUDGET_FRACTION
        verdict = "ok" if self.ok else "OVER BUDGET"
        return (f"{self.name:<44} {self.total:>12,} B = {100 * self.total / limit:4.1f} % of the "
                f"{limit:,.0f} B limit; budget (75 %) {self.budget:,} B: {verdict}")  # fmt: skip


def unzipped_bytes(path: Path) -> int:
    """Unzipped size of a zip file, or the total size of a directory's files, in bytes."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def _asset(outdir: Path, code: dict[str, Any]) -> Path:
    """The staged asset (``asset.<hash>`` directory or ``asset.<hash>.zip``) behind a
    ``Code``/``Content`` property whose ``S3Key`` is ``<hash>.zip``."""
    key = code.get("S3Key")
    if not isinstance(key, str):
        raise ValueError(f"not a CDK asset: {code!r}")
    digest = key.removesuffix(".zip")
    for candidate in (outdir / f"asset.{digest}", outdir / f"asset.{digest}.zip"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"asset.{digest} is not staged in {outdir}")


def function_sizes(outdir: Path, template: dict[str, Any]) -> list[PackageSize]:
    """Every ``AWS::Lambda::Function`` of a synthesized template with its code and layers.

    Args:
        outdir: the cloud assembly directory the template was synthesized into.
        template: the parsed stack template.

    Raises:
        FileNotFoundError / ValueError: a function or layer asset is not staged in ``outdir``.
    """
    resources = template["Resources"]
    out = []
    for lid, res in sorted(resources.items()):
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = res["Properties"]
        parts = {f"code {lid}": unzipped_bytes(_asset(outdir, props["Code"]))}
        for ref in props.get("Layers", []):
            layer_id = ref["Ref"]
            parts[f"layer {layer_id}"] = unzipped_bytes(
                _asset(outdir, resources[layer_id]["Properties"]["Content"])
            )
        out.append(PackageSize(lid, sum(parts.values()), LAMBDA_BUDGET, parts))
    return out


def runtime_sizes(outdir: Path, template: dict[str, Any]) -> list[PackageSize]:
    """Every ``AWS::BedrockAgentCore::Runtime`` code zip: unzipped and zipped sizes."""
    out = []
    for lid, res in sorted(template["Resources"].items()):
        if res["Type"] != "AWS::BedrockAgentCore::Runtime":
            continue
        s3 = res["Properties"]["AgentRuntimeArtifact"]["CodeConfiguration"]["Code"]["S3"]
        path = _asset(outdir, {"S3Key": s3["Prefix"]})
        out.append(PackageSize(f"{lid} (unzipped)", unzipped_bytes(path), AGENTCORE_UNZIPPED_BUDGET, {}))
        out.append(PackageSize(f"{lid} (zipped)", path.stat().st_size, AGENTCORE_ZIPPED_BUDGET, {}))
    return out


def check_assembly(outdir: Path) -> list[PackageSize]:
    """Sizes of every function and runtime of every stack in a cloud assembly."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    sizes: list[PackageSize] = []
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        sizes += function_sizes(outdir, template) + runtime_sizes(outdir, template)
    return sizes


def print_artifact_budget(art: Artifacts, out=print) -> int:
    """Print the built artifacts' sizes and each kind of function's unzipped total (the
    largest handler folder + its layers) against :data:`LAMBDA_BUDGET`; 1 if over, else 0."""
    largest = max((unzipped_bytes(d) for d in (ROOT / "functions").iterdir() if d.is_dir()), default=0)
    for line in art.describe()[:3]:  # the layers (the bundle is a line of its own below)
        out(line)
    kinds = [
        PackageSize("agent function (largest code + 3 layers)",
                    largest + art.deps_layer_bytes + art.code_layer_bytes + art.agents_code_bytes, LAMBDA_BUDGET, {}),
        PackageSize("slim function (largest code + 2 layers)",
                    largest + art.slim_layer_bytes + art.code_layer_bytes, LAMBDA_BUDGET, {}),
        PackageSize(f"agent bundle {art.agent_bundle_zip.name} (unzipped)", art.agent_bundle_bytes,
                    AGENTCORE_UNZIPPED_BUDGET, {}),
        PackageSize(f"agent bundle {art.agent_bundle_zip.name} (zipped)", art.agent_bundle_zipped_bytes,
                    AGENTCORE_ZIPPED_BUDGET, {}),
    ]  # fmt: skip
    for k in kinds:
        out(k.line())
    return 0 if all(k.ok for k in kinds) else 1


def main(argv: list[str] | None = None) -> None:
    """``python -m stacks.budget CDK_OUT`` (or ``--artifacts``): exit 1 when a package is over its budget."""
    args = argv if argv is not None else sys.argv[1:]
    if args == ["--artifacts"]:
        sys.exit(print_artifact_budget(build_all(log=lambda m: print(m, file=sys.stderr))))
    outdir = Path(args[0] if args else "cdk.out")
    sizes = check_assembly(outdir)
    if not sizes:
        sys.exit(f"budget: no Lambda function or AgentCore runtime in {outdir}")
    for size in sizes:
        print(size.line())
    over = [s.name for s in sizes if not s.ok]
    if over:
        sys.exit(f"budget: over 75 % of the documented limit: {', '.join(over)}")
    print(f"budget: {len(sizes)} packages within 75 % of their limits")


if __name__ == "__main__":
    main()
