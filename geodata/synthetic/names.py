"""Danish-sounding names of towns, villages, parishes and streets, drawn from the generator's name stream."""

from __future__ import annotations

from typing import Final

import numpy as np

_STEMS: Final = (
    "Hvid", "Skov", "Lund", "Ege", "Birke", "Ask", "Hjort", "Ravn", "Ulf", "Bjørn", "Sten", "Sand", "Mose", "Kær",
    "Hede", "Bakke", "Dal", "Vand", "Sø", "Gud", "Tor", "Frej", "Od", "Tyr", "Hol", "Ring", "Bram", "Gjern",
    "Hammel", "Thor", "Fal", "Grind", "Sej", "Ans", "Bor", "Fur", "Hald", "Kjel", "Lem", "Rye", "Vium", "Lin",
    "Gam", "Ål", "Ølg", "Hør", "Dals", "Tinn", "Sval", "Kvong", "Bred", "Grøn", "Ny", "Gammel", "Rød", "Sort",
    "Hjer", "Tarm", "Vorg", "Gjed", "Haun", "Rand", "Ebel", "Trust", "Fjel", "Fly", "Hav", "Klo", "Mør", "Stub",
)  # fmt: skip
_MIDDLES: Final = ("", "", "", "", "e", "s", "er", "el", "ing")
_SUFFIXES: Final = (
    "by", "rup", "strup", "lev", "sted", "ning", "holm", "købing", "bjerg", "skov", "lund", "torp", "toft", "høj",
    "bæk", "um", "ager", "inge", "mark", "dal", "lunde", "borg",
)  # fmt: skip
_TOWN_SUFFIXES: Final = ("købing", "sted", "by", "holm", "strup", "lev", "rup", "bjerg", "borg", "ning")
_QUALIFIERS: Final = ("Lille", "Store", "Nørre", "Sønder", "Vester", "Øster", "Ny", "Gammel")
_STREET_STEMS: Final = (
    "Birke", "Ege", "Linde", "Ahorn", "Kastanie", "Rose", "Hyld", "Skov", "Eng", "Mose", "Bakke", "Mølle",
    "Skole", "Kirke", "Præste", "Smede", "Mejeri", "Sol", "Vester", "Øster", "Nørre", "Sønder", "Grøn", "Park",
    "Tvær", "Fasan", "Hjorte", "Ugle", "Lærke", "Svale", "Stær", "Bøge", "Pile", "Hassel", "Kløver", "Vibe",
    "Agerhøns", "Tjørne", "Ene", "Gran", "Fyrre", "Lyng", "Toft", "Kilde", "Bæk", "Å", "Dam", "Stations",
)  # fmt: skip
_STREET_KINDS: Final = ("vej", "vej", "vej", "gade", "vænget", "toften", "parken", "haven")


class Namer:
    """Draws unique Danish-sounding place names (a local helper; never shared between calls)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.street_pool = [s + k if k.islower() else f"{s} {k}" for s in _STREET_STEMS for k in _STREET_KINDS]

    def place(self, *, town: bool = False) -> str:
        """Return a new place name, from town suffixes with ``town``.

        After 50 clashes with names already used a qualifier (Lille, Store, ...) is prefixed, and after 200 a
        number is appended, so the name is always unique.
        """
        suffixes = _TOWN_SUFFIXES if town else _SUFFIXES
        for attempt in range(200):
            stem = str(self.rng.choice(_STEMS))
            middle = str(self.rng.choice(_MIDDLES))
            suffix = str(self.rng.choice(suffixes))
            name = (stem + middle + suffix).capitalize()
            if attempt >= 50:
                name = f"{self.rng.choice(_QUALIFIERS)} {name}"
            if name not in self.used:
                self.used.add(name)
                return name
        k = 2
        while f"{name} {k}" in self.used:
            k += 1
        self.used.add(f"{name} {k}")
        return f"{name} {k}"

    def streets(self, n: int) -> list[str]:
        """Return ``n`` street names, unique within one settlement where the pool allows."""
        pool = self.street_pool
        order = self.rng.permutation(len(pool))
        names = [pool[i] for i in order[:n].tolist()]
        while len(names) < n:
            names.append(f"{names[len(names) % len(pool)]} {len(names) // len(pool) + 1}")
        return names
