"""Who may change a batch at the same time, and why no two transactions deadlock.

Two kinds of writer change a batch that exists:

- *chunks* (storage/processing.py): a consumer settling some pending items.
  Several chunks of one batch may run at once, on different consumers, each
  on items it has claimed.
- *batch writers* (cancel, retry, update, delete): one at a time, and never
  beside a chunk of the same batch, so what they check (anything pending?
  anything failed?) stays true until they commit.

On PostgreSQL a per-batch advisory lock says which: chunks hold it shared,
batch writers exclusive. Every transaction takes its locks in this order:

1. the batch lock: at most one, on one batch;
2. that batch's item rows: chunks claim pending items with SKIP LOCKED, which
   never waits; batch writers hold the batch lock exclusively, so no chunk
   holds any item of theirs;
3. activity keys (the unique index): chunks insert in key order;
4. the batch row: batch writers lock it right after the batch lock, when no
   chunk of that batch can hold it; chunks lock it last, to add their counts.
   The reconciler and a job taking its lease lock batch rows and wait for
   nothing after;
5. the tally rows of the batch's coordinator, when its status changes, in
   status order: the last thing any transaction waits for.

A transaction waits only for one that is further along this order (an equal
activity key is held by a transaction past it, or the lock it waits for at
step 4 is held by one that waits for nothing), so the waits cannot form a
cycle. SQLite needs none of this: BEGIN IMMEDIATE admits one writer at a time.
"""

from storage.database import database, is_sqlite

# The two-key form of advisory locks: a key space of its own, apart from the
# single-key lock that schema migrations take.
_BATCH_LOCK_SPACE = 0x6261


def _key(number: int) -> int:
    """The lock's second key, a 32-bit integer. Batch ids can be larger (a request
    may name any id the spec allows); two batches sharing a key only wait for
    each other now and then, they never skip a lock."""
    return number % 2**31


def lock_batch_for_writer(number: int) -> None:
    """Hold the batch against chunks and other batch writers until the transaction ends."""
    if not is_sqlite():
        database.execute_sql(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_BATCH_LOCK_SPACE, _key(number))
        )


def share_batch_with_chunks(number: int) -> None:
    """Hold the batch against batch writers, beside other chunks, until the transaction ends."""
    if not is_sqlite():
        database.execute_sql(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", (_BATCH_LOCK_SPACE, _key(number))
        )
