"""What a person reads is dated in the commune's legal time (issue 37): the letter that comes with a
right-of-access copy, the destruction date a requisition's recipient is given (R6), the French
spreadsheet's times — Paris's for the metropolis, an overseas commune's own, never Paris's written
in the code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from vigie.custody.access_copies import letter
from vigie.custody.exports.texts import keep_until, one_month_after
from vigie.records.spreadsheet import when

pytestmark = pytest.mark.unit

MANIFEST = {"camera": {"name": "Gare", "location": "parvis"},
            "period": {"start": "2026-03-01T02:30:00Z", "end": "2026-03-01T02:31:00Z"},
            "request": {"id": 7}, "video": {"path": "video.mp4"}}


def test_the_access_letter_gives_the_period_in_the_communes_legal_time_R22() -> None:
    paris = letter(MANIFEST, commune_name="Palaiseau")
    assert "du 01/03/2026 à 03:30:00 au 01/03/2026 à 03:31:00\n(heure de Paris)" in paris
    kourou = letter({**MANIFEST, "time_zone": "America/Cayenne"}, commune_name="Kourou")
    assert "du 28/02/2026 à 23:30:00 au 28/02/2026 à 23:31:00\n(heure légale, " \
        "America/Cayenne)" in kourou
    assert "heure de Paris" not in kourou


def test_the_destruction_date_is_counted_from_the_making_day_where_the_commune_is_R6() -> None:
    # 02:30 UTC on 1 March is still 28 February in Cayenne: a month later is 28 March there.
    assert one_month_after("2026-03-01T02:30:00+00:00") == "01/04/2026"
    assert one_month_after("2026-03-01T02:30:00+00:00", "America/Cayenne") == "28/03/2026"
    package = {"created_at": "2026-03-01T02:30:00+00:00",
               "cameras": [{"id": "kourou/port", "time_zone": "America/Cayenne"}]}
    assert "au plus tard le 28/03/2026" in keep_until(package)


def test_the_french_spreadsheet_writes_the_communes_legal_time() -> None:
    moment = datetime(2026, 7, 14, 12, 0, 0, tzinfo=UTC)
    assert when(moment, french=True) == "14/07/2026 14:00:00"
    assert when(moment, french=True, time_zone="Indian/Reunion") == "14/07/2026 16:00:00"
    assert when(moment, french=False, time_zone="Indian/Reunion") == moment.isoformat()
