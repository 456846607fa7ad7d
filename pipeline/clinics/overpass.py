"""Live facilities from OpenStreetMap through the Overpass API, with an on-disk JSON cache.

The HTTP call goes through an injectable *transport* so tests never touch the network:
``transport(url, query, timeout, headers) -> str`` returns the response body or raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.clinics.errors import OverpassError
from pipeline.clinics.facility import Facility
from pipeline.clinics.geo import haversine_km, validate_latlon
from pipeline.paths import CACHE_DIR

ENDPOINTS = (
    "https://overpass-api.de/api/interpreter",
    "https://overpass.kumi.systems/api/interpreter",
)
USER_AGENT = "busi-cad-dashboard/0.1 (research tool)"
TIMEOUT_S = 8.0
CACHE_TTL_S = 7 * 24 * 3600
MAX_RESULTS = 500
DEFAULT_CACHE_DIR = CACHE_DIR / "overpass"
SOURCE = "OpenStreetMap (Overpass API)"

Transport = Callable[[str, str, float, dict], str]

FLAG_SPECIALITIES = ("oncology", "radiology", "gynaecology", "gynecology", "senology", "nuclear_medicine")
FLAG_WORDS = ("mammogra", "breast", "senolog", "oncolog", "cancer", "tumor", "tumour", "radiolog")


def build_query(lat: float, lon: float, radius_km: float, max_results: int = MAX_RESULTS) -> str:
    """Overpass QL for hospitals, clinics and doctors within ``radius_km`` of a point."""
    lat, lon = validate_latlon(lat, lon)
    radius_m = int(round(radius_km * 1000))
    around = f"(around:{radius_m},{lat:.5f},{lon:.5f})"
    return (
        "[out:json][timeout:25];\n(\n"
        f'  nwr{around}["amenity"~"^(hospital|clinic|doctors)$"];\n'
        f'  nwr{around}["healthcare"~"^(hospital|clinic|doctor|centre|radiology)$"];\n'
        f"  nwr{around}[\"healthcare:speciality\"~\"oncology|radiology|gynaecology\"];\n"
        f");\nout center {max_results};\n"
    )


def requests_transport(url: str, query: str, timeout: float, headers: dict) -> str:
    """Default transport: HTTP POST with ``requests``; raises :class:`OverpassError` on failure."""
    import requests

    try:
        resp = requests.post(url, data={"data": query}, timeout=timeout, headers=headers)
        resp.raise_for_status()
    except requests.Timeout as exc:
        raise OverpassError(f"{url} timed out after {timeout:g} s") from exc
    except requests.HTTPError as exc:
        raise OverpassError(f"{url} answered HTTP {exc.response.status_code}") from exc
    except requests.RequestException as exc:
        raise OverpassError(f"{url} unreachable ({type(exc).__name__})") from exc
    return resp.text


def _kind(tags: dict) -> str:
    amenity = tags.get("amenity", "")
    healthcare = tags.get("healthcare", "")
    if amenity in ("hospital", "clinic", "doctors"):
        return amenity
    return {"hospital": "hospital", "doctor": "doctors", "radiology": "clinic"}.get(healthcare, "clinic")


def _specialities(tags: dict) -> list[str]:
    raw = tags.get("healthcare:speciality", "")
    return [s.strip() for s in raw.replace(",", ";").split(";") if s.strip()]


def is_breast_relevant(tags: dict) -> bool:
    """Oncology/radiology/gynaecology speciality, or mammography/breast/cancer in name or tags."""
    if any(s.lower() in FLAG_SPECIALITIES for s in _specialities(tags)):
        return True
    text = " ".join(f"{k} {v}" for k, v in tags.items() if not k.startswith(("addr:", "website", "phone"))).lower()
    return any(w in text for w in FLAG_WORDS)


def _address(tags: dict) -> str:
    street = " ".join(p for p in (tags.get("addr:housenumber", ""), tags.get("addr:street", "")) if p)
    parts = [street, tags.get("addr:postcode", ""), tags.get("addr:city", "")]
    return tags.get("addr:full") or ", ".join(p for p in parts if p)


def parse_elements(payload: dict) -> list[Facility]:
    """Facilities from an Overpass JSON payload (nodes with lat/lon, ways/relations with center).

    Elements without coordinates are skipped; a way and a node with the same name within
    300 m are treated as one facility. Raises :class:`OverpassError` for a non-Overpass payload.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("elements"), list):
        raise OverpassError("Overpass response has no 'elements' list")
    out: list[Facility] = []
    for el in payload["elements"]:
        if not isinstance(el, dict):
            continue
        tags = el.get("tags") or {}
        if "lat" in el and "lon" in el:
            lat, lon = el["lat"], el["lon"]
        elif isinstance(el.get("center"), dict):
            lat, lon = el["center"].get("lat"), el["center"].get("lon")
        else:
            continue
        try:
            lat, lon = validate_latlon(lat, lon)
        except Exception:  # noqa: BLE001 - a malformed element is skipped
            continue
        kind = _kind(tags)
        name = tags.get("name") or tags.get("name:en") or f"Unnamed {kind}"
        fac = Facility(
            name=name, lat=lat, lon=lon, kind=kind,
            city=tags.get("addr:city", ""), country=tags.get("addr:country", ""),
            address=_address(tags),
            phone=tags.get("phone") or tags.get("contact:phone", ""),
            website=tags.get("website") or tags.get("contact:website") or tags.get("url", ""),
            source=SOURCE, specialities="; ".join(_specialities(tags)),
            breast_relevant=is_breast_relevant(tags),
            osm_url=f"https://www.openstreetmap.org/{el.get('type', 'node')}/{el.get('id', '')}",
        )
        if any(f.name == fac.name and haversine_km(f.lat, f.lon, lat, lon) < 0.3 for f in out):
            continue
        out.append(fac)
    return out


def cache_key(lat: float, lon: float, radius_km: float) -> str:
    """File stem for a search: lat/lon rounded to 2 decimals (~1 km) plus the radius."""
    return f"{lat:+.2f}_{lon:+.2f}_r{radius_km:g}".replace("+", "p").replace("-", "m")


class OverpassClient:
    """Fetch facilities around a point: cache first, then each endpoint once, failing fast.

    ``cache_dir=None`` means ``data/cache/overpass``; ``use_cache=False`` disables the cache.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        endpoints: Sequence[str] = ENDPOINTS,
        timeout: float = TIMEOUT_S,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport or requests_transport
        self.cache_dir = (Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR) if use_cache else None
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self.ttl_s = ttl_s
        self.clock = clock

    def _cache_path(self, lat: float, lon: float, radius_km: float) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{cache_key(lat, lon, radius_km)}.json"

    def _read_cache(self, path: Path | None, query: str) -> dict | None:
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            fresh = self.clock() - float(entry["fetched_at"]) <= self.ttl_s
            same = entry.get("query_sha1") == hashlib.sha1(query.encode()).hexdigest()
            return entry["payload"] if fresh and same else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, path: Path | None, query: str, payload: dict) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"fetched_at": self.clock(), "query_sha1": hashlib.sha1(query.encode()).hexdigest(),
                     "payload": payload}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass  # a read-only cache must not break the search

    def fetch(self, lat: float, lon: float, radius_km: float) -> tuple[list[Facility], bool]:
        """``(facilities, from_cache)`` around the point rounded to 2 decimals.

        Raises :class:`OverpassError` when every endpoint fails or answers malformed JSON.
        """
        lat, lon = validate_latlon(lat, lon)
        rlat, rlon = round(lat, 2), round(lon, 2)
        query = build_query(rlat, rlon, radius_km)
        path = self._cache_path(rlat, rlon, radius_km)
        cached = self._read_cache(path, query)
        if cached is not None:
            return parse_elements(cached), True
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        errors: list[str] = []
        for url in self.endpoints:
            try:
                body = self.transport(url, query, self.timeout, headers)
                payload = json.loads(body)
                facilities = parse_elements(payload)
            except OverpassError as exc:
                errors.append(str(exc))
                continue
            except ValueError:
                errors.append(f"{url} returned malformed JSON")
                continue
            except Exception as exc:  # noqa: BLE001 - any transport failure means "try the next one"
                errors.append(f"{url} failed ({type(exc).__name__}: {exc})")
                continue
            self._write_cache(path, query, payload)
            return facilities, False
        raise OverpassError("; ".join(errors) or "no Overpass endpoint configured")
