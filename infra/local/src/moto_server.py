"""moto's server, adjusted where its DynamoDB would not hold up under our tests.

1. DynamoDB requests are taken one at a time. moto answers each request on its own
   thread, and its TransactWriteItems snapshots tables while other threads may be
   writing to them; under concurrent load that fails with "dictionary changed size
   during iteration" (HTTP 500). DynamoDB itself serialises conflicting writes, so taking
   DynamoDB requests one at a time changes nothing a client can rely on, and removes the
   race. Other services (SQS long polls above all) stay concurrent. The state dump
   (`/moto-api/data.json`, which the local outbox reads) waits for DynamoDB writes too:
   it checks each attribute serialises, then serialises it again, and an item written
   in between made the dump fail.

2. A transaction snapshots only the items it names, not whole tables. moto deep-copies
   the whole table once per transaction item so that it can roll back; with one table
   for everything that copy grows with every test and soon takes seconds, long enough
   for SDK calls to time out. A transaction can only change the items it names, so
   keeping those is the same rollback at a fraction of the cost.

3. A query on the table reads only its partition. moto builds and sorts a list of every
   item in the table for each `Query`, then keeps those of the asked partition: 400 ms a
   query at 40,000 items, which made the daily autopay run of the bench crawl. The items
   of one partition, sorted by sort key, are what that filter would have kept, in the
   same order. Queries on an index keep moto's own path.

4. Sending a message does not count the queue. moto reads every attribute of the queue to
   learn whether it deduplicates by content, and three of those attributes count its
   messages, each message asking the clock twice: sending grows with the queue, and a batch
   of 500 new bills took over 30 s once a queue nobody drained held a few thousand notices.
   The counts are now made with one reading of the clock per count, comparing the same
   per-message times moto compares, so they are the same numbers at a fraction of the cost.
"""

import copy
import threading

import moto.dynamodb.models as dynamodb_models
from moto.core.utils import unix_time_millis
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.sqs.models import Queue

# --------------------------------------------------------------- 1. one at a time

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    dump = environ.get("PATH_INFO") == "/moto-api/data.json"
    if dump or environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # The body is produced inside the lock as well.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialised

# --------------------------------------------------------------- 2. item snapshots


class _CopyKeepingTables:
    """`copy` as moto's DynamoDB module sees it: tables are not copied (the wrapper
    below keeps the touched items instead), everything else is."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _CopyKeepingTables()
_transact = DynamoDBBackend.transact_write_items


def _named_items(backend, transact_items):
    """(table, hash key, range key, deep copy of the item or None) per named item."""
    saved = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            attrs = op.get("Item") or op["Key"]
            hash_key = DynamoType(attrs[table.hash_key_attr])
            range_key = (
                DynamoType(attrs[table.range_key_attr])
                if table.range_key_attr is not None
                else None
            )
        except Exception:
            # A malformed entry: moto refuses it before writing anything.
            continue
        before = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(before)))
    return saved


def _restore(saved):
    # Newest first, so an item named twice ends as it was before the transaction.
    for table, hash_key, range_key, before in reversed(saved):
        if range_key is None:
            if before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        else:
            bucket = table.items[hash_key]
            if before is None:
                bucket.pop(range_key, None)
            else:
                bucket[range_key] = before


def _transact_write_items(self, transact_items):
    saved = _named_items(self, transact_items)
    try:
        return _transact(self, transact_items)
    except Exception:
        _restore(saved)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items

# --------------------------------------------------------------- 3. one partition

_partition = threading.local()
_all_items = Table.all_items
_query = Table.query


def _all_items_or_partition(self):
    held = getattr(_partition, "items", None)
    if held is not None and held[0] is self:
        return sorted(held[1], key=lambda item: item.range_key)
    return _all_items(self)


def _query_one_partition(self, hash_key, *args, **kwargs):
    # moto's backend passes `index_name` as the eighth positional argument.
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name is not None or hash_key is None or self.range_key_attr is None:
        return _query(self, hash_key, *args, **kwargs)
    # `get`, not `[]`: `items` is a defaultdict, and a query must not add a partition.
    _partition.items = (self, list(self.items.get(hash_key, {}).values()))
    try:
        return _query(self, hash_key, *args, **kwargs)
    finally:
        _partition.items = None


Table.all_items = _all_items_or_partition
Table.query = _query_one_partition

# --------------------------------------------------------------- 4. cheap message counts

# moto's `Message.visible` is `now > visible_at`, `Message.delayed` is `now < delayed_until`.


def _count_delayed(self):
    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def _count_not_visible(self):
    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


def _count_visible(self):
    now = unix_time_millis()
    return sum(
        1 for m in self._messages if now > m.visible_at and not now < m.delayed_until
    )


Queue.approximate_number_of_messages_delayed = property(_count_delayed)
Queue.approximate_number_of_messages_not_visible = property(_count_not_visible)
Queue.approximate_number_of_messages = property(_count_visible)

if __name__ == "__main__":
    main()
