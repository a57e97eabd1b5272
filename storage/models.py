"""The tables: batches, their items, and the activities items create."""

from peewee import (
    SQL,
    AutoField,
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    NodeList,
    SqliteDatabase,
    TextField,
)

from storage.database import database


class SequenceField(AutoField):
    """An id that is never handed out twice, even after the newest row is deleted.

    Ids are public (batch-0042, pa-011), so a deleted batch's id must not come
    back as a different batch. PostgreSQL sequences never reuse; SQLite needs
    AUTOINCREMENT for that.
    """

    def ddl(self, ctx):
        node = super().ddl(ctx)
        if isinstance(self.model._meta.database, SqliteDatabase):
            return NodeList((node, SQL("AUTOINCREMENT")))
        return node


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Batch(BaseModel):
    id = SequenceField()
    coordinator_id = CharField(max_length=64)
    label = CharField(max_length=200, null=True)
    # Derived by rules.batch_status, stored in the same transaction as the
    # counters so the list can filter and index on it.
    status = CharField(max_length=16)
    total_items = IntegerField()
    completed = IntegerField(default=0)
    failed = IntegerField(default=0)
    pending = IntegerField()
    cancelled = IntegerField(default=0)
    # Bumped by every change to the batch or any of its items: the ETag.
    version = IntegerField(default=1)
    submitted_at = DateTimeField()
    updated_at = DateTimeField()
    completed_at = DateTimeField(null=True)
    cancelled_at = DateTimeField(null=True)
    cancellation_reason = CharField(max_length=500, null=True)
    # Until when the batch's pending items are someone's job: set when a job
    # is queued, renewed by the consumer with every chunk. Past it, the
    # reconciler queues the batch again.
    lease_expires_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("submitted_at", "id"), False),
            (("status", "submitted_at", "id"), False),
            (("coordinator_id", "submitted_at", "id"), False),
        )


class BatchItem(BaseModel):
    batch = ForeignKeyField(Batch, on_delete="CASCADE", column_name="batch_id", index=False)
    position = IntegerField()
    mentor_id = CharField(max_length=64)
    activity_type = CharField(max_length=32)
    activity_date = DateField()
    duration_minutes = IntegerField()
    notes = TextField(null=True)
    status = CharField(max_length=16)
    activity_id = IntegerField(null=True)
    error_code = CharField(max_length=32, null=True)
    attempts = IntegerField(default=1)
    # An earlier item of the same batch asks for the same activity.
    repeats_earlier = BooleanField(default=False)
    settled_at = DateTimeField(null=True)

    class Meta:
        primary_key = CompositeKey("batch", "position")


# The worker and the reconciler look only for pending items.
BatchItem.add_index(
    BatchItem.batch,
    BatchItem.position,
    where=BatchItem.status == "pending",
    name="batchitem_pending",
)


class Activity(BaseModel):
    id = SequenceField()
    mentor_id = CharField(max_length=64)
    activity_type = CharField(max_length=32)
    activity_date = DateField()
    duration_minutes = IntegerField()
    notes = TextField(null=True)
    created_at = DateTimeField()
    # Where it came from; the batch record may be deleted, the activity stays.
    source_batch_id = IntegerField(null=True)
    source_position = IntegerField(null=True)

    class Meta:
        indexes = ((("mentor_id", "activity_type", "activity_date"), True),)


class BatchTally(BaseModel):
    """How many batches each coordinator has in each status.

    Kept in the same transaction as every status change, so the list's
    `total` is a sum over a few rows instead of a count over every batch.
    """

    coordinator_id = CharField(max_length=64)
    status = CharField(max_length=16, index=True)
    batches = IntegerField()

    class Meta:
        primary_key = CompositeKey("coordinator_id", "status")


class IdempotencyKey(BaseModel):
    """A client's Idempotency-Key and the response its first request got.

    While the first request runs, `response_status` is null and
    `locked_until` says how long the key counts as in flight; a request whose
    process died leaves a lock that simply runs out.
    """

    operation = CharField(max_length=32)
    # The batch id for a retry, empty for a submit: keys are per operation and batch.
    scope = CharField(max_length=32)
    key = CharField(max_length=255)
    fingerprint = CharField(max_length=64)
    response_status = IntegerField(null=True)
    response_headers = TextField(null=True)
    response_body = BlobField(null=True)
    locked_until = DateTimeField(null=True)
    created_at = DateTimeField()
    expires_at = DateTimeField(index=True)

    class Meta:
        primary_key = CompositeKey("operation", "scope", "key")


TABLES = [Batch, BatchItem, Activity, BatchTally, IdempotencyKey]
