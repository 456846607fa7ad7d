"""Orchestration: live OpenStreetMap first, the bundled offline list when that fails."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from pipeline.clinics.bundled import OFFLINE_LABEL, load_bundled
from pipeline.clinics.errors import OverpassError
from pipeline.clinics.facility import Facility
from pipeline.clinics.geo import nearest, validate_latlon
from pipeline.clinics.overpass import OverpassClient

OFFLINE_ENV = "BUSI_OFFLINE"  # "1" forces the bundled list (no network at all)
DEFAULT_LIMIT = 50
FALLBACK_NEAREST = 10


def offline_forced() -> bool:
    """True when ``BUSI_OFFLINE`` is set to 1/true/yes."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class SearchResult:
    """Facilities around a point and where they came from."""

    lat: float
    lon: float
    radius_km: float
    facilities: list[Facility]
    source: str  # "live" or "offline"
    message: str
    from_cache: bool = False
    reason: str = ""  # offline only: why the live search was not used, plus what is shown

    @property
    def is_live(self) -> bool:
        """True for OpenStreetMap data (fresh or cached)."""
        return self.source == "live"


def _offline(lat: float, lon: float, radius_km: float, limit: int, reason: str,
             bundled: list[Facility] | None) -> SearchResult:
    everything = load_bundled() if bundled is None else bundled
    found = nearest(everything, lat, lon, radius_km, limit)
    if found:
        detail = f"{len(found)} within {radius_km:g} km (bundled list, not exhaustive)."
    else:
        found = nearest(everything, lat, lon, None, FALLBACK_NEAREST)
        detail = f"None lies within {radius_km:g} km; these are the {len(found)} nearest (bundled list)."
    msg = f"{reason} Showing the {OFFLINE_LABEL}: {detail}"
    return SearchResult(lat, lon, radius_km, found, "offline", msg, reason=f"{reason} {detail}")


def search_facilities(
    lat: float,
    lon: float,
    radius_km: float = 10.0,
    *,
    client: OverpassClient | None = None,
    offline: bool | None = None,
    bundled: list[Facility] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> SearchResult:
    """Nearest facilities, nearest first: OpenStreetMap via Overpass, else the bundled list.

    ``offline=None`` reads ``BUSI_OFFLINE``. Network problems never raise: they become the
    fallback with a message saying why.
    """
    lat, lon = validate_latlon(lat, lon)
    if radius_km <= 0:
        raise ValueError("radius_km must be positive")
    if offline is None:
        offline = offline_forced()
    if offline:
        return _offline(lat, lon, radius_km, limit, f"Offline mode ({OFFLINE_ENV}=1).", bundled)
    client = client or OverpassClient()
    try:
        live, cached = client.fetch(lat, lon, radius_km)
    except OverpassError as exc:
        return _offline(lat, lon, radius_km, limit, f"Live OpenStreetMap search unavailable: {exc}.", bundled)
    found = nearest(live, lat, lon, radius_km, limit)
    if not found:
        return _offline(lat, lon, radius_km, limit,
                        f"OpenStreetMap lists no hospital or clinic within {radius_km:g} km.", bundled)
    total = len(nearest(live, lat, lon, radius_km))
    shown = f"the nearest {len(found)} of {total}" if total > len(found) else f"{len(found)}"
    msg = (f"Live OpenStreetMap data{' (cached)' if cached else ''}: {shown} hospitals, clinics "
           f"and doctors within {radius_km:g} km. © OpenStreetMap contributors.")
    return SearchResult(lat, lon, radius_km, found, "live", msg, cached)


TABLE_COLUMNS = ["Name", "Type", "Distance (km)", "City / address", "Website", "Phone", "Breast/oncology", "Source"]


def to_dataframe(facilities: list[Facility]) -> pd.DataFrame:
    """The table shown under the map (nearest first)."""
    rows = [
        {
            "Name": f.name,
            "Type": f.kind_label,
            "Distance (km)": round(f.distance_km, 1) if f.distance_km is not None else None,
            "City / address": f.location_text,
            "Website": f.website,
            "Phone": f.phone,
            "Breast/oncology": "yes" if f.breast_relevant else "",
            "Source": f.source,
        }
        for f in facilities
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
