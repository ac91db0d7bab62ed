"""Notifiers: SNS when deployed, an .eml outbox locally."""

from __future__ import annotations

import email
from email.policy import default

import boto3
from relay_core.adapters.notifiers import OutboxNotifier, SnsNotifier
from relay_core.ports import Message


def test_sns_notifier_publishes_with_a_subject_sns_accepts(aws):
    # Given a topic with an SQS subscription to observe what SNS delivers
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="relay-approvals")["TopicArn"]
    queue = sqs.create_queue(QueueName="observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # When a message with a long, multi-line subject is sent
    message_id = SnsNotifier(topic).send(Message(to="a@example.com", subject="Approval needed:\n" + "x" * 200, body="link"))
    # Then SNS accepted it with a one-line subject of at most 100 characters (SNS Publish limit)
    (received,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    import json

    delivered = json.loads(received["Body"])
    assert delivered["MessageId"] == message_id
    assert len(delivered["Subject"]) == 100 and "\n" not in delivered["Subject"]
    assert delivered["Message"] == "link"


def test_outbox_notifier_writes_whole_rfc5322_messages_in_delivery_order(tmp_path):
    notifier = OutboxNotifier(tmp_path / "outbox", "relay@localhost")
    first = notifier.send(Message(to="a@example.com", subject="one", body="first body"))
    second = notifier.send(Message(to="a@example.com", subject="two", body="second body"))
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]]
    parsed = email.message_from_bytes((tmp_path / "outbox" / first.rsplit("/", 1)[1]).read_bytes(), policy=default)
    assert parsed["To"] == "a@example.com" and parsed["Subject"] == "one"
    assert parsed.get_body().get_content().strip() == "first body"
    assert not list((tmp_path / "outbox").glob(".*"))  # no temporary files left behind
