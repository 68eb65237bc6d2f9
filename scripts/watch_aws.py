#!/usr/bin/env python3
"""The AWS side of `make watch`, on a moto server (boto3 from .venv-moto).

    watch_aws.py setup ENV_FILE   create the tables, queues and example config
                                  (idempotent), write the functions' env file
    watch_aws.py events           the events table, one JSON line per item
    watch_aws.py deliveries       the deliveries table, one JSON line per item
    watch_aws.py stream           the events table's stream INSERTs as a Lambda
                                  DynamoDB stream event (for `cargo lambda
                                  invoke enqueue --data-file`)
    watch_aws.py queue            the delivery queue's visible messages as a
                                  Lambda SQS event (for `... invoke deliver`)

The endpoint is $AWS_ENDPOINT_URL (default http://127.0.0.1:5050). The
resources match the templates in infra/ and the moto harness in
shared/src/aws/testing.rs: events `pk` (S) with a NEW_IMAGE stream and TTL
`expires_at`; deliveries `pk` + `sk` (S) with TTL `expires_at`; config `pk`
(S); pollers `pk` (S); gates `pk` (S); the delivery queue (visibility 360 s, redrive to the DLQ after 20
receives) and the DLQ.
"""
import base64
import json
import os
import sys

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5050")
REGION = "us-east-1"
EVENTS, DELIVERIES, CONFIG = "sluice-events", "sluice-deliveries", "sluice-config"
POLLERS = "sluice-pollers"
GATES = "sluice-gates"
QUEUE, DLQ = "sluice-deliveries", "sluice-dlq"
SINK_URL = os.environ.get("SLUICE_WATCH_SINK_URL", "http://127.0.0.1:9090/webhooks")

# Development secrets, the same as examples/dev.env (never use them for real).
SECRETS = {
    "GITHUB_SECRET": "dev-github-secret",
    "SINK_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
# The items of the config table: the JSON of a [[sources]] / [[subscriptions]]
# entry of the TOML config, as `put_config` writes them.
SOURCE = {"id": "github", "provider": "github", "secrets": ["env:GITHUB_SECRET"]}
SUBSCRIPTION = {
    "id": "local-sink",
    "source": "github",
    "events": ["push", "pull_request.*"],
    "url": SINK_URL,
    "format": "raw",
    "signing_secret": "env:SINK_SIGNING_SECRET",
    "allow_local": True,
}


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2}),
    )


def create_table(db, name, keys, stream=False):
    args = {
        "TableName": name,
        "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in keys],
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    try:
        db.create_table(**args)
    except db.exceptions.ResourceInUseException:
        pass


def setup(env_file):
    db, sqs = client("dynamodb"), client("sqs")
    create_table(db, EVENTS, [("pk", "HASH")], stream=True)
    create_table(db, DELIVERIES, [("pk", "HASH"), ("sk", "RANGE")])
    create_table(db, CONFIG, [("pk", "HASH")])
    create_table(db, POLLERS, [("pk", "HASH")])
    create_table(db, GATES, [("pk", "HASH")])
    for table in (EVENTS, DELIVERIES):
        db.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "360",
            "MessageRetentionPeriod": "1209600",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "20"}),
        },
    )["QueueUrl"]
    for pk, config in (("source#github", SOURCE), ("subscription#local-sink", SUBSCRIPTION)):
        db.put_item(
            TableName=CONFIG,
            Item={"pk": {"S": pk}, "config": {"S": json.dumps(config)}, "enabled": {"BOOL": True}},
        )
    env = {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SLUICE_EVENTS_TABLE": EVENTS,
        "SLUICE_DELIVERIES_TABLE": DELIVERIES,
        "SLUICE_CONFIG_TABLE": CONFIG,
        # Only the poll function needs it; one env file serves them all here.
        "SLUICE_POLLERS_TABLE": POLLERS,
        # Deliver's (and admin's) delivery controls.
        "SLUICE_GATES_TABLE": GATES,
        "SLUICE_QUEUE_URL": queue_url,
        "SLUICE_DLQ_URL": dlq_url,
        # Config edits in the table show up at the next request.
        "SLUICE_CONFIG_TTL_SECS": "0",
        # The example subscription delivers to the sink on 127.0.0.1. Only
        # this local setup turns the switch on; the templates never set it.
        "SLUICE_ALLOW_LOCAL_DESTINATIONS": "true",
        **SECRETS,
    }
    with open(env_file, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    print(f"watch_aws.py: tables {EVENTS}, {DELIVERIES}, {CONFIG}, {POLLERS}, {GATES}; queues {queue_url}, {dlq_url}")
    print(f"watch_aws.py: source github (secret {SECRETS['GITHUB_SECRET']}) -> subscription local-sink ({SINK_URL})")


def plain(value):
    """A DynamoDB attribute value as plain JSON (bodies as text when they are)."""
    (kind, v), = value.items()
    if kind == "B":
        try:
            return v.decode()
        except UnicodeDecodeError:
            return base64.b64encode(v).decode()
    if kind == "N":
        return int(v) if v.lstrip("-").isdigit() else float(v)
    if kind == "M":
        return {k: plain(x) for k, x in v.items()}
    if kind == "L":
        return [plain(x) for x in v]
    return v


def scan(table):
    db = client("dynamodb")
    for page in db.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            print(json.dumps({k: plain(v) for k, v in sorted(item.items())}))


def wire(value):
    """An attribute value as the Lambda stream event's JSON has it."""
    (kind, v), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(v).decode()}
    if kind == "M":
        return {"M": {k: wire(x) for k, x in v.items()}}
    if kind == "L":
        return {"L": [wire(x) for x in v]}
    return {kind: v}


def stream():
    db, streams = client("dynamodb"), client("dynamodbstreams")
    arn = db.describe_table(TableName=EVENTS)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            out = streams.get_records(ShardIterator=it)
            for r in out["Records"]:
                if r["eventName"] != "INSERT":
                    continue
                d = r["dynamodb"]
                records.append({
                    "eventID": r["eventID"],
                    "eventName": "INSERT",
                    "eventVersion": r.get("eventVersion", "1.1"),
                    "eventSource": "aws:dynamodb",
                    "awsRegion": REGION,
                    "dynamodb": {
                        "ApproximateCreationDateTime": int(d["ApproximateCreationDateTime"].timestamp()),
                        "Keys": {k: wire(v) for k, v in d["Keys"].items()},
                        "NewImage": {k: wire(v) for k, v in d["NewImage"].items()},
                        "SequenceNumber": d["SequenceNumber"],
                        "SizeBytes": d["SizeBytes"],
                        "StreamViewType": d["StreamViewType"],
                    },
                    "eventSourceARN": arn,
                })
            it = out.get("NextShardIterator") if out["Records"] else None
    print(json.dumps({"Records": records}, indent=2))


def queue():
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Received messages stay invisible for the queue's visibility timeout,
    # as they would while a Lambda poller handed them to deliver.
    out = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
        AttributeNames=["All"], MessageAttributeNames=["All"],
    )
    records = [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    } for m in out.get("Messages", [])]
    print(json.dumps({"Records": records}, indent=2))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "setup" and len(argv) == 3:
        setup(argv[2])
    elif cmd == "events":
        scan(EVENTS)
    elif cmd == "deliveries":
        scan(DELIVERIES)
    elif cmd == "stream":
        stream()
    elif cmd == "queue":
        queue()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
