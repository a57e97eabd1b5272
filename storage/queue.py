"""The job queue, kept in the service's own database by default.

With the queue in the same database, queuing a job inside a write transaction
makes "store the batch" and "queue its job" one atomic step. Task results are
not kept: the outcome of a job is what it wrote to the batch.
"""

from huey.contrib.sql_huey import SqlHuey

from storage.database import database

huey = SqlHuey("bulkreg", database=database, create_tables=False, results=False)

QUEUE_TABLES = [
    huey.storage.KV,
    huey.storage.Schedule,
    huey.storage.Task,
    huey.storage.Counter,
]
