"""Notifications: the approval email and the completion notice.

Two adapters of the port :class:`relay_core.ports.Notifier`, chosen by configuration:

- :class:`SnsNotifier` publishes to the SNS topic (``RELAY_TOPIC_ARN``); the topic's
  email subscription delivers it (deployed).
- :class:`OutboxNotifier` writes a real RFC 5322 message as an ``.eml`` file into
  ``RELAY_OUTBOX_DIR`` (local). Files are written to a temporary name and renamed,
  so a reader never sees half a message.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import boto3

from ..config import ApprovalSettings
from ..ports import Message, Notifier


class SnsNotifier:
    """Publish to an SNS topic. SNS subjects are limited to 100 characters (SNS Publish API)."""

    def __init__(self, topic_arn: str, client: Any | None = None):
        self.topic_arn = topic_arn
        self._sns = client or boto3.client("sns")

    def send(self, message: Message) -> str:
        subject = re.sub(r"[\r\n]+", " ", message.subject)[:100]
        response = self._sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message.body)
        return str(response["MessageId"])


class OutboxNotifier:
    """Write each message as ``{outbox}/{nanoseconds}-{random}.eml``; names sort in delivery order."""

    def __init__(self, outbox_dir: str | os.PathLike[str], sender: str):
        self.outbox = Path(outbox_dir)
        self.sender = sender

    def send(self, message: Message) -> str:
        self.outbox.mkdir(parents=True, exist_ok=True)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = message.to
        msg["Subject"] = message.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="relay.local")
        for name, value in message.headers.items():
            msg[name] = value
        msg.set_content(message.body)
        fd, tmp = tempfile.mkstemp(dir=self.outbox, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(msg))
        final = self.outbox / f"{time.time_ns():020d}-{secrets.token_hex(4)}.eml"
        os.replace(tmp, final)
        return str(final)


def notifier_for(settings: ApprovalSettings) -> Notifier:
    """The outbox when ``outbox_dir`` is set (local), else SNS on ``topic_arn``."""
    if settings.outbox_dir:
        return OutboxNotifier(settings.outbox_dir, settings.mail_from)
    if settings.topic_arn:
        return SnsNotifier(settings.topic_arn)
    from ..errors import InvalidInput

    raise InvalidInput("configuration: set RELAY_TOPIC_ARN or RELAY_OUTBOX_DIR")
