"""The local stack's moto launcher (moto_server.py) answers as moto itself would.

Each adjustment is checked against moto's own code path on the same data: the launcher is
loaded in this process (it patches moto's classes), and moto's original functions, kept
before loading it, give the expected answers. Run by `make unit`:

    .venv/bin/python -m pytest -q infra/local/src/moto_server_test.py
"""

import pathlib
import random
import runpy

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import unix_time_millis
from moto.dynamodb.models.table import Table
from moto.sqs.models import Message, Queue

COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
MOTO_QUERY = Table.query
MOTO_ALL_ITEMS = Table.all_items
MOTO_COUNTS = {name: getattr(Queue, name) for name in COUNTS}

LAUNCHER = runpy.run_path(
    str(pathlib.Path(__file__).with_name("moto_server.py")), run_name="launcher"
)
LAUNCHER_QUERY = Table.query
LAUNCHER_ALL_ITEMS = Table.all_items


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName="t",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _fill(client, rng):
    for i in range(600):
        client.put_item(
            TableName="t",
            Item={
                "pk": {"S": f"P#{rng.randrange(12)}"},
                "sk": {"S": f"S#{rng.randrange(10_000):05}"},
                "n": {"N": str(rng.randrange(100))},
            },
        )


def _queries(rng):
    for _ in range(120):
        query = {
            "TableName": "t",
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"P#{rng.randrange(14)}"}},
            "ScanIndexForward": rng.random() < 0.5,
        }
        if rng.random() < 0.5:
            query["KeyConditionExpression"] += " AND sk BETWEEN :a AND :b"
            low = rng.randrange(10_000)
            query["ExpressionAttributeValues"][":a"] = {"S": f"S#{low:05}"}
            query["ExpressionAttributeValues"][":b"] = {"S": f"S#{low + 3000:05}"}
        if rng.random() < 0.4:
            query["FilterExpression"] = "n > :m"
            query["ExpressionAttributeValues"][":m"] = {"N": str(rng.randrange(100))}
        if rng.random() < 0.4:
            query["Limit"] = rng.randrange(1, 30)
        if rng.random() < 0.3:
            query["ProjectionExpression"] = "sk"
        yield query


def _all_pages(client, query):
    pages = []
    query = dict(query)
    while True:
        page = client.query(**query)
        pages.append((page["Items"], page.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in page:
            return pages
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _with(query, all_items, fn):
    Table.query, Table.all_items = query, all_items
    try:
        return fn()
    finally:
        Table.query, Table.all_items = LAUNCHER_QUERY, LAUNCHER_ALL_ITEMS


def test_a_table_query_answers_as_moto_does(dynamodb):
    rng = random.Random(7)
    _fill(dynamodb, rng)
    for query in _queries(rng):
        ours = _all_pages(dynamodb, query)
        motos = _with(MOTO_QUERY, MOTO_ALL_ITEMS, lambda: _all_pages(dynamodb, query))
        assert ours == motos, query


def test_a_query_does_not_create_the_partition_it_asks_for(dynamodb):
    dynamodb.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )
    assert dynamodb.scan(TableName="t")["Count"] == 0


def test_a_cancelled_transaction_leaves_every_named_item_as_it_was(dynamodb):
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "2"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    items = dynamodb.scan(TableName="t")["Items"]
    assert items == [{"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}}]


def test_message_counts_are_motos_counts():
    rng = random.Random(11)
    queue = Queue("q", "eu-central-1", "123456789012")
    now = unix_time_millis()
    for i in range(3000):
        message = Message(str(i), "body")
        message.mark_sent()
        roll = rng.random()
        if roll < 0.2:
            message.delayed_until = now + 60_000
        elif roll < 0.3:
            message.delayed_until = now - 60_000
        if rng.random() < 0.25:
            message.visible_at = now + 60_000
        queue._messages.append(message)
    for name in COUNTS:
        assert getattr(queue, name) == MOTO_COUNTS[name].fget(queue), name


def test_the_state_dump_waits_for_dynamodb_writes():
    """The dump and DynamoDB requests go through the same lock; other requests do not."""
    seen = {}

    def dispatch(_app, environ, _start_response):
        seen[environ.get("PATH_INFO")] = LAUNCHER["_dynamodb"].locked()
        return [b""]

    serialised = LAUNCHER["_serialised"]
    globals_ = serialised.__globals__
    original = globals_["_dispatch"]
    globals_["_dispatch"] = dispatch
    try:
        serialised(None, {"PATH_INFO": "/moto-api/data.json"}, None)
        serialised(None, {"PATH_INFO": "/", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}, None)
        serialised(None, {"PATH_INFO": "/v2/email/outbound-emails"}, None)
    finally:
        globals_["_dispatch"] = original
    assert seen == {
        "/moto-api/data.json": True,
        "/": True,
        "/v2/email/outbound-emails": False,
    }
