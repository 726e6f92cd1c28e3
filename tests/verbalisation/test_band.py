"""The band written on an offence still (R34): the instant in the commune's legal time — an
overseas commune's is not Paris's (issue 37: Europe/Paris was written in the code)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.verbalisation.capture import band_lines

pytestmark = pytest.mark.unit

INSTANT = datetime(2026, 7, 14, 12, 0, 0, 350_000, tzinfo=UTC)


def test_the_band_states_the_communes_legal_time_to_the_tenth_R34() -> None:
    paris = band_lines(INSTANT, "Europe/Paris", camera_name="Gare", camera="palaiseau/gare",
                       place="place de la gare")
    assert paris == ["14/07/2026 14:00:00,3 (heure de Paris)",
                     "Gare (palaiseau/gare) — place de la gare"]
    guadeloupe = band_lines(INSTANT, "America/Guadeloupe", camera_name="Port",
                            camera="pointe-a-pitre/port", place="")
    assert guadeloupe == ["14/07/2026 08:00:00,3 (heure légale, America/Guadeloupe)",
                          "Port (pointe-a-pitre/port)"]
    # Winter: Paris is UTC+1, Réunion UTC+4 all year.
    winter = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert band_lines(winter, "Europe/Paris", camera_name="G", camera="p/g", place="")[0] \
        == "06/01/2026 00:30:00,0 (heure de Paris)"
    assert band_lines(winter, "Indian/Reunion", camera_name="G", camera="p/g", place="")[0] \
        == "06/01/2026 03:30:00,0 (heure légale, Indian/Reunion)"
