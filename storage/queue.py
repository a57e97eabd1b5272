"""The job queue: in the service's own database, or on Redis (HUEY_REDIS_URL).

With the queue in the same database, queuing a job inside a write transaction
makes "store the batch" and "queue its job" one atomic step; PostgreSQL hands
each job to one consumer with FOR UPDATE SKIP LOCKED. Task results are not
kept: the outcome of a job is what it wrote to the batch.
"""

from huey import RedisHuey
from huey.contrib.sql_huey import SqlHuey, SqlStorage

from settings import settings
from storage.database import database

if settings.huey_redis_url:
    huey = RedisHuey(settings.queue_name, url=settings.huey_redis_url, results=False)
else:
    huey = SqlHuey(settings.queue_name, database=database, create_tables=False, results=False)

QUEUE_IN_DATABASE = isinstance(huey.storage, SqlStorage)

# The database queue's tables exist whichever queue is in use: one schema
# serves both set-ups, and switching to Redis and back loses nothing.
QUEUE_TABLES = list(
    SqlStorage(settings.queue_name, database=database, create_tables=False).create_models()
)
