"""CSV for people and for programs: RFC 4180 with ISO 8601 UTC times, or the convention a French
spreadsheet opens as is (semicolons, a byte-order mark, the commune's legal time to the second);
no cell starts a formula (OWASP's CSV injection rule). Used by the register's exports (R14, R16)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from vigie.records import legal_time

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> str:
    """A cell that would start a formula (a username typed as `=HYPERLINK(…)`) gets a leading
    apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def when(moment: datetime | None, *, french: bool,
         time_zone: str = legal_time.DEFAULT_TIME_ZONE) -> str:
    """ISO 8601 as stored (UTC), or dd/mm/yyyy hh:mm:ss in the commune's legal time."""
    if moment is None:
        return ""
    return legal_time.local(moment, time_zone).strftime("%d/%m/%Y %H:%M:%S") if french \
        else moment.isoformat()


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[object]], *, french: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if french else ",")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([spreadsheet_cell(v) for v in row])
    return ("\ufeff" if french else "") + out.getvalue()
