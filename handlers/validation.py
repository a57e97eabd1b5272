"""What Connexion's validation needs beyond the stock Draft 4 checker."""

import re
from datetime import date

from jsonschema import Draft4Validator

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_calendar_date(value: object) -> bool:
    """`format: date`: YYYY-MM-DD and a day that exists (no 2026-02-30)."""
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def register_formats() -> None:
    """The stock checker ignores `format: date`; teach it before any API is added."""
    Draft4Validator.FORMAT_CHECKER.checks("date")(is_calendar_date)
