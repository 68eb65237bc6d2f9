"""moto_server, with DynamoDB's atomic conditional writes.

moto's server answers each request on its own thread and does not lock its
DynamoDB backend: two concurrent conditional writes to one item can both
see the condition hold and both succeed, which DynamoDB never allows. The
delivery lease is such a write, so under load the tests would measure moto,
not sluice. Every DynamoDB backend call is serialised here, which restores
DynamoDB's guarantee (one item's writes are applied one at a time).

    python moto_atomic.py -H 127.0.0.1 -p PORT    (moto_server's arguments)
"""

import functools
import sys
import threading
import types

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialised(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with _LOCK:
            return fn(*args, **kwargs)

    return call


for _name, _fn in list(vars(DynamoDBBackend).items()):
    if isinstance(_fn, types.FunctionType) and not _name.startswith("_"):
        setattr(DynamoDBBackend, _name, _serialised(_fn))

if __name__ == "__main__":
    sys.exit(main())
