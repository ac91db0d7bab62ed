"""The adapters: the only code in ``relay_core`` that holds a boto3 client or catches
``botocore.exceptions.ClientError``. Each implements a port of :mod:`relay_core.ports`
and turns service errors into :mod:`relay_core.errors`:

- :mod:`.artifact_store`: :class:`~relay_core.ports.ArtifactStore` on S3;
- :mod:`.workflow_records`: :class:`~relay_core.ports.WorkflowRecords` on DynamoDB;
- :mod:`.step_functions`: :class:`~relay_core.ports.Executions` and
  :class:`~relay_core.ports.TaskTokens` on Step Functions;
- :mod:`.notifiers`: :class:`~relay_core.ports.Notifier` on SNS, or an ``.eml`` outbox.
"""
