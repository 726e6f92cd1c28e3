"""The law's limits as pure rules (issue 22): the offence list and the agents' powers (R33), plate
formats (typed by the agent, no plate reading: R29), the capture window (R31)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vigie.verbalisation import catalogue, plates
from vigie.verbalisation.messages import Refused

from services.verbalisation.records import Rules, check_capture_time

pytestmark = pytest.mark.unit

RULES = Rules(capture_window_s=20, future_tolerance_s=2, keep_after_handover=timedelta(days=7),
              keep_at_most=timedelta(days=30))


def test_the_bundled_offence_list_is_dated_and_limited_to_what_the_law_allows_R33() -> None:
    offences = catalogue.load()
    assert offences.year >= 2026 and offences.sources
    categories = {o.category for o in offences.offences}
    assert categories == {"traffic", "parking", "parking_dangerous", "waste"}
    # R121-6 offences are traffic; everything cites its article.
    assert all(o.article.startswith(("Code de la route", "Code pénal")) for o in offences.offences)


def test_an_asvp_notes_parking_only_and_not_dangerous_parking_R33() -> None:
    offences = catalogue.load()
    asvp = offences.allowed("asvp")
    assert asvp and {o.category for o in asvp} == {"parking"}
    assert offences.find("CR-R417-9") not in asvp, "dangerous parking is beyond an ASVP"
    assert len(offences.allowed("police_municipale")) == len(offences.offences)
    assert offences.allowed(None) == [], "an account not listed notes nothing (R32)"


def test_another_offence_list_is_read_from_a_file_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "offences-2027.json"
    good.write_text(json.dumps({"year": 2027, "valid_from": "2027-01-01", "sources": ["x"],
                                "offences": [{"code": "CR-R417-10", "label": "Stationnement "
                                              "gênant", "article": "Code de la route, R417-10",
                                              "category": "parking", "natinf": "123"}]}))
    assert catalogue.load(str(good)).year == 2027
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"year": 2027, "valid_from": "2027-01-01", "sources": [],
                               "offences": [{"code": "X1", "label": "a", "article": "b",
                                             "category": "speeding-camera"}]}))
    with pytest.raises(ValueError):
        catalogue.load(str(bad))


@pytest.mark.parametrize(("typed", "country", "canonical"), [
    ("ab-123-cd", "FR", "AB-123-CD"), ("AB 123 CD", "fr", "AB-123-CD"),
    ("WW-123-AB", "FR", "WW-123-AB"),  # a temporary registration
    ("1234 ab 91", "FR", "1234 AB 91"), ("12 ABC 2A", "FR", "12 ABC 2A"),
    ("123 AB 974", "FR", "123 AB 974"), ("B-ABC-123", "BE", "BABC123"),
    ("M AB 1234", "DE", "MAB1234")])
def test_plates_as_typed_are_normalised(typed: str, country: str, canonical: str) -> None:
    assert plates.check(typed, country) == canonical


@pytest.mark.parametrize(("typed", "country", "why"), [
    ("AI-123-CD", "FR", "French"), ("AB-123-CO", "FR", "French"), ("UB-123-CD", "FR", "French"),
    ("AB-000-CD", "FR", "French"), ("SS-123-AB", "FR", "French"), ("AB-123-SS", "FR", "French"),
    ("AB-123-WW", "FR", "French"), ("12345 AB 91", "FR", "French"), ("123 AB 00", "FR", "French"),
    ("123 AB 96", "FR", "French"), ("AB123", "FR", "French"), ("", "FR", "French"),
    ("AB-123-CD", "XX", "country"), ("AB-123-CD", "", "country"),
    ("A", "DE", "2 to 12"), ("ÉCOLE-1", "BE", "2 to 12")])
def test_impossible_plates_and_countries_are_refused(typed: str, country: str, why: str) -> None:
    with pytest.raises(plates.PlateError, match=why):
        plates.check(typed, country)


def test_a_capture_is_from_the_live_image_only_R31() -> None:
    now = datetime(2026, 11, 30, 10, tzinfo=UTC)
    check_capture_time(now - timedelta(seconds=1), RULES, now)
    check_capture_time(now + timedelta(seconds=1), RULES, now)  # clocks differ a little
    for moment, words in ((now - timedelta(seconds=25), "live image only"),
                          (now - timedelta(days=2), "never from a recording"),
                          (now + timedelta(seconds=10), "future")):
        with pytest.raises(Refused, match=words) as refused:
            check_capture_time(moment, RULES, now)
        assert refused.value.status == 422
