"""The job queue: in the service's own database, or on Redis (HUEY_REDIS_URL).

With the queue in the same database, queuing a job inside a write transaction
makes "store the batch" and "queue its job" one atomic step; PostgreSQL hands
each job to one consumer with FOR UPDATE SKIP LOCKED. Task results are not
kept: the outcome of a job is what it wrote to the batch.
"""

from huey import Huey, RedisHuey
from huey.contrib.sql_huey import SqlStorage

from settings import settings
from storage.database import database


class LookFirstSqlStorage(SqlStorage):
    """Huey's SQL storage, looking before it takes the queue's lock.

    An idle consumer polls several times a second; Huey's dequeue starts a
    write transaction every time, which on SQLite takes the one write lock
    that submits and chunks wait for. A plain read first finds the queue
    empty without taking it.
    """

    def dequeue(self):
        self.check_conn()
        if not self.tasks(self.Task.id).exists():
            return None
        return super().dequeue()


if settings.huey_redis_url:
    huey = RedisHuey(settings.queue_name, url=settings.huey_redis_url, results=False)
else:
    huey = Huey(
        settings.queue_name,
        storage_class=LookFirstSqlStorage,
        database=database,
        create_tables=False,
        results=False,
    )

QUEUE_IN_DATABASE = isinstance(huey.storage, SqlStorage)

# The database queue's tables exist whichever queue is in use: one schema
# serves both set-ups, and switching to Redis and back loses nothing.
QUEUE_TABLES = list(
    SqlStorage(settings.queue_name, database=database, create_tables=False).create_models()
)
