"""Registration plates as the agent types them (no plate reading of any kind: R29). French plates
are checked against the two formats in use: SIV (AB-123-CD, since 2009) and FNI (123 ABC 91, the
older series still on the road); other countries' plates by length and characters only."""

from __future__ import annotations

import re

from vigie.plumbing.refusals import Refusal

# ISO 3166-1 alpha-2 codes of the countries whose vehicles are usually seen in Île-de-France:
# the EU, the EEA, Switzerland, the United Kingdom and neighbours, Maghreb, a few others.
COUNTRIES = frozenset("""
AD AL AT BA BE BG BY CH CY CZ DE DK DZ EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MA MC MD ME MK
MT NL NO PL PT RO RS RU SE SI SK SM TN TR UA VA US CA
""".split())
# SIV: two letters, three digits (not 000), two letters; I, O and U are never used; SS is not
# issued as either letter pair (nor WW as the last pair).
SIV = re.compile(r"^(?!SS)[A-HJ-NP-TV-Z]{2}(?!000)[0-9]{3}(?!SS|WW)[A-HJ-NP-TV-Z]{2}$")
# FNI: 1–4 digits, 1–3 letters, the département (01–95, 2A, 2B, 971–976).
FNI = re.compile(r"^[0-9]{1,4}[A-Z]{1,3}(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$")
FOREIGN = re.compile(r"^[A-Z0-9]{2,12}$")


class PlateError(Refusal):
    """A plate or country that cannot be right, with what to correct."""

    domain = "plate"


def normalise(plate: str) -> str:
    return re.sub(r"[\s\-.]", "", plate.upper())


def check(plate: str, country: str) -> str:
    """The plate in its canonical form (AB-123-CD, 123 ABC 91, or compact), or PlateError."""
    country = country.strip().upper()
    if country not in COUNTRIES:
        raise PlateError(f"unknown country {country!r}: an ISO 3166 code such as FR, BE, DE",
                         code="plate.country", country=country)
    compact = normalise(plate)
    if country != "FR":
        if not FOREIGN.match(compact):
            raise PlateError("a plate is 2 to 12 letters and digits", code="plate.length")
        return compact
    if SIV.match(compact):
        return f"{compact[:2]}-{compact[2:5]}-{compact[5:]}"
    fni = FNI.match(compact)
    if fni:
        department = fni.group(1)
        body = compact[: -len(department)]
        digits = re.match(r"[0-9]+", body)
        assert digits is not None
        return f"{digits.group()} {body[digits.end():]} {department}"
    raise PlateError("not a French plate: SIV AB-123-CD (no I, O or U) or FNI 123 ABC 91",
                     code="plate.not_french")
