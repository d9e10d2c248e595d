"""The declarative base, and the timestamp type every table uses (UTC on SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}

class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp stored as UTC on every database.

    SQLite keeps no offset: a plain ``DateTime(timezone=True)`` would store 10:00+02:00 as 10:00
    and read it back naive. Converting to UTC on the way in and marking UTC on the way out makes
    time windows and per-day buckets mean the same on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; Helpmate stores timezone-aware times only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
