"""A multilingual task from real data: "on which continent is this country / language / currency?", from CLDR.

Everything but a few prompt words comes from the Unicode CLDR as ``babel`` ships it:

- **Continent of a territory**: the prefix of its IANA time-zone ids (``zone_territories``: ``Europe/Berlin``
  -> DE), kept when all its zones share one continent (Africa, America -> Americas, Asia, Europe,
  Pacific/Australia -> Oceania); territories with zones only in the Atlantic, Indian or Antarctica
  areas, or on two continents (Russia, Spain, the United States), are left out.
- **Continent of a language**: the one continent of the territories where it is official or spoken by
  at least 1 % of the people (``territory_languages``); languages of several continents (English,
  Arabic, Russian) are left out.
- **Continent of a currency**: the one continent of the territories where it is legal tender today
  (``territory_currencies``); the euro and the US dollar are left out.
- Territories without a single continent are ignored when placing languages and currencies.
- **Names**: ``Locale(x).territories``, ``.languages``, ``.currencies``: the name of each entity in each
  language, written by CLDR's translators; entities without a name in a language asked for, or whose
  name is not unique within its kind and language, are left out.
- **Answers**: the English CLDR names of the regions 002, 019, 142, 150, 009 (Africa, Americas, Asia,
  Europe, Oceania), the same fixed candidates in every language, scored by log-likelihood (chance 20 %).

The prompt's field words (``Country: ... Continent:``) are the only text written here (``FIELD_WORDS``).
The train/test split is by entity, stratified by kind and seeded, so no test entity is seen in training,
in any language.
"""

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from transformers_align.errors import UserError

CONTINENT_REGIONS = ("002", "019", "142", "150", "009")  # CLDR/UN M.49 codes: Africa, Americas, Asia, Europe, Oceania
ZONE_PREFIX_REGION = {
    "Africa": "002",
    "America": "019",
    "Asia": "142",
    "Europe": "150",
    "Pacific": "009",
    "Australia": "009",
}
KINDS = ("territory", "language", "currency")
MIN_SPEAKER_PERCENT = 1.0  # a language counts in a territory where it is official or spoken by this share at least
# Written here: "<kind word>: <name>\n<continent word>:" in each supported language.
FIELD_WORDS = {
    "en": {"territory": "Country", "language": "Language", "currency": "Currency", "continent": "Continent"},
    "fr": {"territory": "Pays", "language": "Langue", "currency": "Monnaie", "continent": "Continent"},
    "de": {"territory": "Land", "language": "Sprache", "currency": "Währung", "continent": "Kontinent"},
    "es": {"territory": "País", "language": "Idioma", "currency": "Moneda", "continent": "Continente"},
    "ru": {"territory": "Страна", "language": "Язык", "currency": "Валюта", "continent": "Континент"},
}


@dataclass(frozen=True)
class Entity:
    kind: str  # territory, language or currency
    code: str  # CLDR code: DE, sw, KES
    continent: str  # English region name, one of continent_labels()
    names: Tuple[Tuple[str, str], ...]  # (language, name) in every language of the task

    def name(self, language: str) -> str:
        return dict(self.names)[language]


def _locale(language: str):
    from babel import Locale

    return Locale.parse(language)


def continent_labels() -> List[str]:
    """The answer candidates: CLDR's English names of the five continental regions."""
    english = _locale("en").territories
    return [english[code] for code in CONTINENT_REGIONS]


def _single_continent(regions) -> str:
    regions = set(regions)
    return regions.pop() if len(regions) == 1 and None not in regions else None


def entity_continents() -> Dict[Tuple[str, str], str]:
    """``{(kind, code): region code}`` for every entity whose continent is unambiguous (see the module doc)."""
    from babel.core import get_global

    zone_regions = defaultdict(set)
    for zone, territory in get_global("zone_territories").items():
        zone_regions[territory].add(ZONE_PREFIX_REGION.get(zone.split("/")[0]))
    territories = {code: _single_continent(regions) for code, regions in zone_regions.items()}
    territories = {code: region for code, region in territories.items() if region}
    # Territories without a single continent (Russia, Mayotte, the United States) say nothing either way.
    language_regions, currency_regions = defaultdict(set), defaultdict(set)
    for territory, languages in get_global("territory_languages").items():
        for language, use in languages.items():
            if territory in territories and (
                use["official_status"] or (use["population_percent"] or 0) >= MIN_SPEAKER_PERCENT
            ):
                language_regions[language].add(territories[territory])
    for territory, currencies in get_global("territory_currencies").items():
        for currency, _start, end, tender in currencies:
            if territory in territories and end is None and tender:
                currency_regions[currency].add(territories[territory])
    found = {("territory", code): region for code, region in territories.items()}
    for kind, regions in (("language", language_regions), ("currency", currency_regions)):
        for code, seen in regions.items():
            region = _single_continent(seen)
            if region:
                found[kind, code] = region
    return found


def build_entities(languages: Sequence[str]) -> List[Entity]:
    """Entities with a continent and a unique name in English and each of ``languages``, sorted by (kind, code)."""
    unknown = [language for language in languages if language not in FIELD_WORDS]
    if unknown:
        raise UserError(f"no prompt words for language(s) {', '.join(unknown)}; supported: {', '.join(FIELD_WORDS)}")
    languages = ["en"] + [language for language in languages if language != "en"]
    english_regions = _locale("en").territories
    names = {
        language: {
            "territory": _locale(language).territories,
            "language": _locale(language).languages,
            "currency": _locale(language).currencies,
        }
        for language in languages
    }
    candidates = [
        (kind, code, region)
        for (kind, code), region in sorted(entity_continents().items())
        if all(code in names[language][kind] for language in languages)
    ]
    # A name shared by two entities of a kind (historic variants, macro-languages) has no single answer.
    counts = Counter(
        (language, kind, names[language][kind][code].casefold())
        for kind, code, _ in candidates
        for language in languages
    )
    entities = []
    for kind, code, region in candidates:
        named = tuple((language, names[language][kind][code]) for language in languages)
        if all(counts[language, kind, name.casefold()] == 1 for language, name in named):
            entities.append(Entity(kind, code, english_regions[region], named))
    return entities


def split_entities(entities: Sequence[Entity], test_fraction: float, seed: int) -> Tuple[List[Entity], List[Entity]]:
    """``(train, test)``: a seeded split within each kind, so both parts have every kind in proportion."""
    if not 0 < test_fraction < 1:
        raise UserError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    train, test = [], []
    for kind in KINDS:
        members = [entity for entity in entities if entity.kind == kind]
        random.Random(f"{seed}-{kind}").shuffle(members)
        cut = round(len(members) * test_fraction)
        test += members[:cut]
        train += members[cut:]
    return train, test


def prompt(entity: Entity, language: str) -> str:
    words = FIELD_WORDS[language]
    colon = " :" if language == "fr" else ":"  # French puts a space before the colon
    return f"{words[entity.kind]}{colon} {entity.name(language)}\n{words['continent']}{colon}"


def answer(entity: Entity) -> str:
    """The completion the task trains: a space, then the English continent name (a candidate)."""
    return f" {entity.continent}"


def name_pattern(names: Sequence[str]) -> "re.Pattern":
    """A case-insensitive pattern that finds any of ``names`` as a whole word or phrase."""
    alternatives = "|".join(re.escape(name) for name in sorted(set(names), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def drop_pairs_mentioning(
    pairs: Sequence[Tuple[str, str]], entities: Sequence[Entity]
) -> Tuple[List[Tuple[str, str]], int]:
    """Pairs in which no entity name (any language) occurs on either side, and how many were dropped."""
    pattern = name_pattern([name for entity in entities for _, name in entity.names])
    kept = [pair for pair in pairs if not pattern.search(pair[0]) and not pattern.search(pair[1])]
    return kept, len(pairs) - len(kept)
