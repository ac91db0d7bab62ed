"""CDK app entry point: ``python -m stacks.app`` (the ``app`` command in ``cdk.json``).

Synthesizes the Relay stack with the cdk-nag AwsSolutions checks attached; an
unacknowledged finding fails the synth. The account and Region come from the
CLI's environment at deploy time (``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION``);
offline synths leave them unresolved.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.relay_stack import RelayStack
from stacks.settings import ContextError

#: The stack name unless ``-c stackName=...`` overrides it.
DEFAULT_STACK_NAME = "Relay"


def build_app(app: App | None = None, **stack_kwargs: Any) -> tuple[App, RelayStack]:
    """Create the app and the stack (tests pass ``App(context=..., outdir=...)``)."""
    app = app or App()
    name = app.node.try_get_context("stackName") or DEFAULT_STACK_NAME
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = RelayStack(
        app, name, env=env, description="Relay: research workflows with human approval", **stack_kwargs
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    """Synthesize; a bad context value exits 1 with one line naming the key (no traceback)."""
    try:
        app, _ = build_app()
    except ContextError as exc:
        sys.exit(f"relay: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
