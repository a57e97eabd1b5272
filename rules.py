"""The business rules, as pure functions: no database, no HTTP.

Each rule lives here once and is called from wherever it is needed.
"""

import re
from collections.abc import Hashable, Iterable
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum


class BatchStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemError(StrEnum):
    DUPLICATE_ACTIVITY = "duplicate_activity"
    FUTURE_DATE = "future_date"


ERROR_MESSAGES = {
    ItemError.DUPLICATE_ACTIVITY: "Duplicate activity on this date",
    ItemError.FUTURE_DATE: "Activity date is in the future",
}


def batch_status(*, cancelled: bool, pending: int, completed: int, failed: int) -> BatchStatus:
    """The one derivation of a batch's status from its counters."""
    if cancelled:
        return BatchStatus.CANCELLED
    if pending:
        return BatchStatus.PROCESSING
    if not failed:
        return BatchStatus.COMPLETED
    if not completed:
        return BatchStatus.FAILED
    return BatchStatus.PARTIAL


def repeats_earlier(keys: Iterable[Hashable]) -> list[bool]:
    """For each key, whether an earlier entry of the same list has it.

    Within one batch the earlier item asks first, so every later item with the
    same (mentor, type, date) is a duplicate whatever the earlier one's fate.
    """
    seen = set()
    flags = []
    for key in keys:
        flags.append(key in seen)
        seen.add(key)
    return flags


def judge_item(
    activity_date: date, *, today: date, repeats_earlier: bool, activity_exists: bool = False
) -> ItemError | None:
    """Why an item cannot become an activity, or None if it can."""
    if activity_date > today:
        return ItemError.FUTURE_DATE
    if repeats_earlier or activity_exists:
        return ItemError.DUPLICATE_ACTIVITY
    return None


def today_in(zone: tzinfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date()


def utc_now() -> datetime:
    """The current time as a naive UTC datetime, the form stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def format_timestamp(moment: datetime | None) -> str | None:
    """RFC 3339, UTC, whole seconds: 2026-03-25T08:00:00Z."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_BATCH_ID = re.compile(r"batch-([0-9]{4,18})")


def format_batch_id(number: int) -> str:
    return f"batch-{number:04d}"


def parse_batch_id(batch_id: str) -> int | None:
    """The batch number behind a batch id, or None if it is not a canonical id."""
    match = _BATCH_ID.fullmatch(batch_id)
    if match is None:
        return None
    number = int(match.group(1))
    return number if format_batch_id(number) == batch_id else None


def format_item_id(position: int) -> str:
    return f"item-{position:03d}"


def format_activity_id(number: int) -> str:
    return f"pa-{number:03d}"


def make_etag(batch_number: int, version: int) -> str:
    """A strong entity tag that changes with every change to the batch or its items."""
    return f'"{batch_number}.{version}"'


# One member of an If-Match list: an optional W/ (upper case) and a quoted tag.
_LISTED_TAG = re.compile(r'[ \t]*(W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


def etag_matches(if_match: str, etag: str) -> bool:
    """RFC 9110 If-Match: `*` matches, else strong comparison; weak tags never match.

    A header that is not a list of entity tags matches nothing.
    """
    if if_match.strip() == "*":
        return True
    strong = []
    position = 0
    while position < len(if_match):
        listed = _LISTED_TAG.match(if_match, position)
        if listed is None:
            return False
        if not listed.group(1):
            strong.append(listed.group(2))
        position = listed.end()
    return etag in strong
