"""Which parts of a period recorded segments leave uncovered: shared by holds (what a hold could not
find) and the playback timeline (the gaps a viewer sees)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

# Segments of a camera online join exactly; allow for a frame's rounding.
CONTIGUOUS = timedelta(seconds=1)


def uncovered(found: Iterable[tuple[datetime, datetime]], start: datetime,
              end: datetime) -> list[tuple[datetime, datetime]]:
    """Parts of [start, end] no (start, end) interval covers; joins within CONTIGUOUS are no gap."""
    gaps, cursor = [], start
    for seg_start, seg_end in sorted(found):
        if seg_start - cursor > CONTIGUOUS:
            gaps.append((cursor, seg_start))
        cursor = max(cursor, seg_end)
    if end - cursor > CONTIGUOUS:
        gaps.append((cursor, end))
    return gaps
