"""IAM policy lint of a synthesized template with parliament (duo-labs/parliament).

Every identity policy (``AWS::IAM::Policy``, ``AWS::IAM::ManagedPolicy``, a role's inline
``Policies``) and resource policy (``AWS::SNS::TopicPolicy``, ``AWS::KMS::Key``) of the
template is rendered to plain JSON, with CloudFormation intrinsics replaced by
placeholder ARNs of the right resource type (partition ``aws``, Region ``us-east-1``,
account ``000000000000``, the logical id as the name), and passed to
``parliament.analyze_policy_string``. Any finding fails, except those in :data:`IGNORED`,
each with its reason.

``python -m stacks.iam_lint TEMPLATE.json``: one line per finding, exit 1 if any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from parliament import analyze_policy_string

_PARTITION, _REGION, _ACCOUNT = "aws", "us-east-1", "000000000000"
#: (finding issue, substring of "policy: issue detail") → reason. Each is a gap in parliament's
#: bundled data (1.6.4, 2025-04) or a policy kind it does not model, except the one marked OPEN.
IGNORED: dict[tuple[str, str], str] = {
    ("UNKNOWN_PREFIX", "bedrock-agentcore"): (
        "parliament's IAM definitions predate Amazon Bedrock AgentCore (prefix bedrock-agentcore, Service "
        "Authorization Reference); cfn-lint W3037 and tests/infra check those actions"
    ),
    ("RESOURCE_MISMATCH", '"action": "bedrock:InvokeModel'): (
        "parliament reports a mismatch for bedrock:InvokeModel* even on the inference-profile/* and "
        "foundation-model/* ARN forms it lists as required (reproduced with a one-statement policy)"
    ),
    ("RESOURCE_MISMATCH", '"action": "logs:DescribeLogGroups"'): (
        "the AgentCore execution role AWS documents (IAM Permissions for AgentCore Runtime) grants "
        "logs:DescribeLogGroups on arn:...:log-group:*; parliament's data allows only '*'"
    ),
    ("RESOURCE_MISMATCH", '"required_format": "arn:*:states:*:*:express:*:*:*"'): (
        "DescribeExecution accepts a Standard execution ARN or an Express one; the statement names "
        "Standard executions only, which is all Relay runs"
    ),
    (
        "RESOURCE_STAR",
        "TopicKey",
    ): "in a KMS key policy Resource '*' means the key itself (KMS developer guide, key policies)",
    ("RESOURCE_MISMATCH", '"action": "states:ListExecutions"'): (
        "record_failure lists one Map Run's failed child executions (ListExecutions with mapRunArn); the grant "
        "names both the Map Run and the state machine because the public docs do not settle which one that "
        "form is authorised on; parliament's data knows only the stateMachine form, so it flags the mapRun ARN"
    ),
}
#: ``Fn::GetAtt``/``Ref`` of these resource types render as these ARNs (``{id}`` = logical id).
_ARNS = {
    "AWS::S3::Bucket": "arn:aws:s3:::{id}",
    "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{{id}}",
    "AWS::Lambda::Function": f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:{{id}}",
    "AWS::SNS::Topic": f"arn:aws:sns:{_REGION}:{_ACCOUNT}:{{id}}",
    "AWS::KMS::Key": f"arn:aws:kms:{_REGION}:{_ACCOUNT}:key/{{id}}",
    "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{_REGION}:{_ACCOUNT}:secret:{{id}}-AbCdEf",
    "AWS::Logs::LogGroup": f"arn:aws:logs:{_REGION}:{_ACCOUNT}:log-group:{{id}}:*",
    "AWS::BedrockAgentCore::Runtime": f"arn:aws:bedrock-agentcore:{_REGION}:{_ACCOUNT}:runtime/{{id}}",
    "AWS::StepFunctions::StateMachine": f"arn:aws:states:{_REGION}:{_ACCOUNT}:stateMachine:{{id}}",
    "AWS::IAM::Role": f"arn:aws:iam::{_ACCOUNT}:role/{{id}}",
    "AWS::ApiGateway::RestApi": "{id}",
}
_PSEUDO = {"AWS::Partition": _PARTITION, "AWS::Region": _REGION, "AWS::AccountId": _ACCOUNT,
           "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Relay"}  # fmt: skip


def render(value: Any, resources: dict[str, Any]) -> Any:
    """``value`` with ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Select``/``Fn::Split`` resolved
    to placeholder strings (see the module docstring)."""
    if isinstance(value, list):
        return [render(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        ref = value["Ref"]
        if ref in _PSEUDO:
            return _PSEUDO[ref]
        return _ARNS.get(resources.get(ref, {}).get("Type", ""), "{id}").format(id=ref)
    if set(value) == {"Fn::GetAtt"}:
        lid = value["Fn::GetAtt"][0]
        return _ARNS.get(resources.get(lid, {}).get("Type", ""), "{id}").format(id=lid)
    if set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(render(p, resources)) for p in parts)
    if set(value) == {"Fn::Split"}:
        sep, source = value["Fn::Split"]
        return str(render(source, resources)).split(sep)
    if set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return render(items, resources)[int(index)]
    return {k: render(v, resources) for k, v in value.items()}


def policies(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, policy document)`` of every identity and resource policy in the template."""
    resources = template["Resources"]
    out = []
    for lid, res in sorted(resources.items()):
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy"):
            out.append((lid, props["PolicyDocument"]))
        elif res["Type"] == "AWS::KMS::Key":
            out.append((lid, props["KeyPolicy"]))
        elif res["Type"] == "AWS::IAM::Role":
            out += [(f"{lid}/{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])]
    return [(name, render(doc, resources)) for name, doc in out]


def lint(template: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """Lint every policy; returns (failing findings, ignored findings, policies checked)."""
    failing, ignored = [], []
    found = policies(template)
    for name, doc in found:
        for finding in analyze_policy_string(json.dumps(doc)).findings:
            detail = json.dumps(finding.detail, default=str)
            line = f"{name}: {finding.issue} {finding.title} {detail}".strip()
            if any(issue == finding.issue and part in line for issue, part in IGNORED):
                ignored.append(line)
            else:
                failing.append(line)
    return failing, ignored, len(found)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m stacks.iam_lint TEMPLATE.json")
    failing, ignored, checked = lint(json.loads(Path(args[0]).read_text()))
    for line in failing:
        print(f"parliament: {line}")
    for (issue, part), why in IGNORED.items():
        count = sum(f": {issue} " in line and part in line for line in ignored)
        if count:
            print(f"parliament: ignored {count} x {issue} ({part}): {why}")
    if failing:
        sys.exit(f"parliament: {len(failing)} finding(s) in {checked} policies")
    print(f"parliament: {checked} policies, no findings")


if __name__ == "__main__":
    main()
