"""The purposes a prefectoral authorisation may name (code de la sécurité intérieure, L251-2), in
the words cameras store and the public register shows (issue 24; R3, R25). A camera's purposes are
checked against this list when set over the API; vidéo-verbalisation needs the traffic one (R31)."""

from __future__ import annotations

TRAFFIC = "constatation des infractions aux règles de la circulation"
PURPOSES: tuple[str, ...] = (
    "protection des bâtiments publics",
    "sauvegarde des installations utiles à la défense nationale",
    "régulation des flux de transport",
    TRAFFIC,
    "prévention des atteintes à la sécurité des personnes et des biens",
    "prévention d'actes de terrorisme",
    "prévention des risques naturels ou technologiques",
    "secours aux personnes et défense contre l'incendie",
    "sécurité des installations accueillant du public dans les parcs d'attraction",
    "respect de l'obligation d'être couvert par une assurance de responsabilité civile",
    "prévention et constatation des infractions relatives à l'abandon d'ordures",
)


def unknown(purposes: list[str]) -> list[str]:
    return [p for p in purposes if p not in PURPOSES]
