"""Great-circle distances and nearest-first filtering."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pipeline.clinics.errors import InvalidCoordinatesError
from pipeline.clinics.facility import Facility

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def validate_latlon(lat: float, lon: float) -> tuple[float, float]:
    """Return ``(lat, lon)`` as floats or raise :class:`InvalidCoordinatesError`."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinatesError(f"Latitude/longitude must be numbers, got {lat!r}, {lon!r}.") from exc
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
        raise InvalidCoordinatesError("Latitude/longitude must be finite numbers.")
    if not -90.0 <= lat_f <= 90.0:
        raise InvalidCoordinatesError(f"Latitude {lat_f} is outside -90..90.")
    if not -180.0 <= lon_f <= 180.0:
        raise InvalidCoordinatesError(f"Longitude {lon_f} is outside -180..180.")
    return lat_f, lon_f


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two WGS84 points (spherical Earth)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def nearest(
    facilities: Iterable[Facility],
    lat: float,
    lon: float,
    radius_km: float | None = None,
    limit: int | None = None,
) -> list[Facility]:
    """Facilities with ``distance_km`` set, nearest first, within ``radius_km`` (inclusive) if given."""
    with_d = [f.with_distance(haversine_km(lat, lon, f.lat, f.lon)) for f in facilities]
    if radius_km is not None:
        with_d = [f for f in with_d if f.distance_km <= radius_km]
    with_d.sort(key=lambda f: (f.distance_km, f.name))
    return with_d if limit is None else with_d[:limit]
