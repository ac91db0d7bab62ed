"""The AWS Regions Relay may deploy to: where AgentCore Runtime is documented, so the
researcher runtime can be created and Step Functions' ``aws-sdk:bedrockagentcore``
integration can call it.

Sources (no web access where this was written, so the table is a reading of stored copies
of the documentation, not of the live pages; **check it against them before deploying to a
Region you have not used, and update the table and** :data:`CHECKED`):

- Amazon Bedrock AgentCore developer guide, "Supported AWS Regions"
  (``bedrock-agentcore/latest/devguide/agentcore-regions.html``): the feature × Region
  table, row *AgentCore Runtime* (in newer versions *AgentCore Runtime microVMs*).
- AWS Step Functions developer guide, "Integrating services with Step Functions" and
  "AWS SDK service integrations" (with its release history: the Bedrock AgentCore SDK
  integration was added 2026-03-12). SDK integrations are offered where both Step Functions
  and the service are; a service newly integrated can reach some Regions later.

To add a Region: confirm AgentCore Runtime in the first page and the
``bedrockagentcore`` SDK integration in the second for that Region, add one line below,
and set :data:`CHECKED`. ``tests/infra/test_infra_build.py`` checks the synth refuses a
Region that is not listed.
"""

from __future__ import annotations

#: When :data:`AGENTCORE_REGIONS` was last compared with the pages above (ISO date).
CHECKED = "2026-12-08"

#: Region code → the name the AgentCore "Supported AWS Regions" table uses.
AGENTCORE_REGIONS: dict[str, str] = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",  # newest version of the page only
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (São Paulo)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-west-1": "Europe (Ireland)",
    "eu-west-2": "Europe (London)",
    "eu-west-3": "Europe (Paris)",
    "eu-south-1": "Europe (Milan)",
    "eu-south-2": "Europe (Spain)",
    "eu-north-1": "Europe (Stockholm)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-south-2": "Asia Pacific (Hyderabad)",  # newest version of the page only
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-5": "Asia Pacific (Malaysia)",
    "ap-southeast-7": "Asia Pacific (Thailand)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "us-gov-west-1": "AWS GovCloud (US-West)",
}


def region_problem(region: str | None) -> str | None:
    """Why Relay cannot be deployed to ``region`` (one line), or None: a listed Region, or
    an unknown one (an environment-agnostic synth; the CDK CLI passes ``CDK_DEFAULT_REGION``)."""
    if not region or region in AGENTCORE_REGIONS:
        return None
    return (
        f"deploy Region {region}: AgentCore Runtime and the Step Functions bedrockagentcore SDK integration "
        f"are not documented there (stacks/regions.py, checked {CHECKED}); deploy to one of "
        f"{', '.join(sorted(AGENTCORE_REGIONS))}, or add the Region there once the AWS documentation lists it"
    )
