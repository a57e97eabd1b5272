"""The business rules, without a database."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules import (
    BatchStatus,
    ItemError,
    batch_status,
    etag_matches,
    format_activity_id,
    format_batch_id,
    format_item_id,
    format_timestamp,
    judge_item,
    make_etag,
    parse_batch_id,
    repeats_earlier,
    today_in,
)

TODAY = date(2026, 3, 25)


@pytest.mark.parametrize(
    ("cancelled", "pending", "completed", "failed", "expected"),
    [
        (True, 3, 1, 1, BatchStatus.CANCELLED),
        (True, 0, 5, 0, BatchStatus.CANCELLED),
        (False, 1, 0, 0, BatchStatus.PROCESSING),
        (False, 1, 4, 4, BatchStatus.PROCESSING),
        (False, 0, 5, 0, BatchStatus.COMPLETED),
        (False, 0, 0, 5, BatchStatus.FAILED),
        (False, 0, 13, 2, BatchStatus.PARTIAL),
    ],
)
def test_batch_status_is_derived_from_the_counters(cancelled, pending, completed, failed, expected):
    derived = batch_status(cancelled=cancelled, pending=pending, completed=completed, failed=failed)
    assert derived == expected


def test_repeats_earlier_flags_every_later_copy_but_not_the_first():
    keys = [("m1", "workshop", TODAY), ("m2", "workshop", TODAY), ("m1", "workshop", TODAY)]
    keys.append(keys[0])
    assert repeats_earlier(keys) == [False, False, True, True]


def test_judge_item_accepts_a_past_unique_item():
    assert judge_item(TODAY, today=TODAY, repeats_earlier=False) is None


def test_judge_item_refuses_a_future_date():
    future = date(2026, 3, 26)
    assert judge_item(future, today=TODAY, repeats_earlier=False) == ItemError.FUTURE_DATE


def test_judge_item_refuses_an_in_batch_repeat_and_an_existing_activity():
    assert judge_item(TODAY, today=TODAY, repeats_earlier=True) == ItemError.DUPLICATE_ACTIVITY
    assert (
        judge_item(TODAY, today=TODAY, repeats_earlier=False, activity_exists=True)
        == ItemError.DUPLICATE_ACTIVITY
    )


def test_future_date_is_judged_before_duplicates():
    future = date(2030, 1, 1)
    assert judge_item(future, today=TODAY, repeats_earlier=True) == ItemError.FUTURE_DATE


def test_today_is_taken_in_the_programme_time_zone():
    moment = datetime(2026, 3, 25, 23, 30, tzinfo=UTC)
    assert today_in(ZoneInfo("UTC"), moment) == date(2026, 3, 25)
    assert today_in(ZoneInfo("Pacific/Auckland"), moment) == date(2026, 3, 26)
    assert today_in(ZoneInfo("America/Los_Angeles"), moment) == date(2026, 3, 25)


def test_ids_have_the_contract_formats():
    assert format_batch_id(42) == "batch-0042"
    assert format_batch_id(123456) == "batch-123456"
    assert format_item_id(1) == "item-001"
    assert format_item_id(1000) == "item-1000"
    assert format_activity_id(11) == "pa-011"


@pytest.mark.parametrize(
    ("batch_id", "number"),
    [
        ("batch-0042", 42),
        ("batch-12345", 12345),
        ("batch-00042", None),
        ("batch-42", None),
        ("batch-0042x", None),
        ("item-001", None),
    ],
)
def test_parse_batch_id_accepts_only_canonical_ids(batch_id, number):
    assert parse_batch_id(batch_id) == number


def test_timestamps_are_utc_whole_seconds_with_z():
    assert format_timestamp(datetime(2026, 3, 25, 8, 0, 0, 999_999)) == "2026-03-25T08:00:00Z"
    assert format_timestamp(None) is None


def test_etag_is_strong_and_changes_with_the_version():
    assert make_etag(42, 7) == '"42.7"'
    assert make_etag(42, 7) != make_etag(42, 8)


@pytest.mark.parametrize(
    ("if_match", "matches"),
    [
        ('"42.7"', True),
        ("*", True),
        (' "1.1" , "42.7" ', True),
        ('"a,b", "42.7"', True),
        ('W/"42.7"', False),
        ('w/"42.7"', False),
        ('xyz"42.7"', False),
        ('"42.7";junk', False),
        ('W/"x""42.7"', False),
        ('"42.7', False),
        ("42.7", False),
        ("", False),
    ],
)
def test_if_match_is_a_strict_list_of_strong_tags(if_match, matches):
    assert etag_matches(if_match, '"42.7"') is matches
