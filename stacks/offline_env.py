"""The environment for running the CDK CLI offline: no real credentials, no profile,
no instance metadata, no telemetry, and this interpreter first on PATH (``cdk.json``
runs ``python3 -m stacks.app``). Used by the synth test and the synth benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def offline_env(home: Path) -> dict[str, str]:
    """``os.environ`` without ``AWS_*``/``CDK_*``, plus fake keys and a Region; AWS config
    files point into ``home`` (which need not contain them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
        NPM_CONFIG_UPDATE_NOTIFIER="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env
