"""The offences an agent may note from the image (R33): the Code de la route R121-6 list, parking
offences and waste dumping, as a data file with its year (offences.json), updated without code
changes; filtered by the agent's powers — an ASVP (agent de surveillance de la voie publique) notes
parking offences only, and not dangerous parking."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Category = Literal["traffic", "parking", "parking_dangerous", "waste"]
Power = Literal["police_municipale", "asvp"]
POWERS: dict[Power, frozenset[Category]] = {
    "police_municipale": frozenset({"traffic", "parking", "parking_dangerous", "waste"}),
    "asvp": frozenset({"parking"}),
}
POWER_NAMES: dict[Power, str] = {"police_municipale": "agent de police municipale",
                                 "asvp": "ASVP (stationnement seulement)"}


class Offence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z0-9-]{3,40}$")
    label: str = Field(min_length=3, max_length=300)
    article: str = Field(min_length=3, max_length=200)
    category: Category
    natinf: str | None = Field(default=None, pattern=r"^[0-9]{1,6}$")


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2020, le=2100)
    valid_from: str
    sources: list[str]
    natinf_note: str = ""
    offences: list[Offence] = Field(min_length=1)

    @field_validator("offences")
    @classmethod
    def _unique(cls, offences: list[Offence]) -> list[Offence]:
        codes = [o.code for o in offences]
        if len(codes) != len(set(codes)):
            raise ValueError("offence codes must be unique")
        return offences

    def allowed(self, power: Power | None) -> list[Offence]:
        if power is None:
            return []
        return [o for o in self.offences if o.category in POWERS[power]]

    def find(self, code: str) -> Offence | None:
        return next((o for o in self.offences if o.code == code), None)


@cache
def load(path: str | None = None) -> Catalogue:
    """The bundled list, or another file (VIGIE_VERBALISATION_OFFENCES) with the same form."""
    text = (Path(path).read_text(encoding="utf-8") if path else
            (resources.files("vigie.verbalisation") / "offences.json").read_text(encoding="utf-8"))
    return Catalogue.model_validate(json.loads(text))
