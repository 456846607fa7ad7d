"""Geocoding (offline GeoNames), haversine distances, nearest-first ordering and radius filter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clinics.errors import InvalidCoordinatesError, UnknownPlaceError
from pipeline.clinics.facility import Facility
from pipeline.clinics.geo import EARTH_RADIUS_KM, haversine_km, nearest, validate_latlon
from pipeline.clinics.geocode import geocode, normalize, parse_latlon
from pipeline.errors import BusiError

# --- haversine -------------------------------------------------------------------------------


def test_haversine_zero_and_symmetric():
    assert haversine_km(30.0444, 31.2357, 30.0444, 31.2357) == 0.0
    a = haversine_km(30.0444, 31.2357, 31.2001, 29.9187)
    b = haversine_km(31.2001, 29.9187, 30.0444, 31.2357)
    assert a == pytest.approx(b)


def test_haversine_known_distances():
    # one degree of latitude along a meridian = 2*pi*R/360
    assert haversine_km(0, 0, 1, 0) == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360, rel=1e-9)
    # quarter of the equator and antipodes
    assert haversine_km(0, 0, 0, 90) == pytest.approx(10007.5, abs=1)
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=1)
    # London - Paris city centres: about 344 km
    assert haversine_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343.6, abs=1.5)
    # Cairo - Alexandria: about 180 km
    assert haversine_km(30.0444, 31.2357, 31.2001, 29.9187) == pytest.approx(180, abs=5)
    # LAX - JFK airports: about 3,974 km great-circle
    assert haversine_km(33.9425, -118.4081, 40.6398, -73.7789) == pytest.approx(3974, abs=10)


lat_s = st.floats(-90, 90, allow_nan=False)
lon_s = st.floats(-180, 180, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lat_s, lon_s, lat_s, lon_s, lat_s, lon_s)
def test_haversine_metric_properties(a1, o1, a2, o2, a3, o3):
    d12 = haversine_km(a1, o1, a2, o2)
    assert 0 <= d12 <= math.pi * EARTH_RADIUS_KM + 1e-6
    assert d12 == pytest.approx(haversine_km(a2, o2, a1, o1), abs=1e-6)
    assert haversine_km(a1, o1, a3, o3) <= d12 + haversine_km(a2, o2, a3, o3) + 1e-6


def test_validate_latlon():
    assert validate_latlon("30.5", -10) == (30.5, -10.0)
    for bad in [(91, 0), (-90.1, 0), (0, 180.5), (float("nan"), 0), ("x", 0)]:
        with pytest.raises(InvalidCoordinatesError):
            validate_latlon(*bad)


# --- nearest ---------------------------------------------------------------------------------

ORIGIN = (30.0444, 31.2357)  # Cairo, Tahrir Square


def _fac(name, lat, lon):
    return Facility(name=name, lat=lat, lon=lon)


FACS = [
    _fac("far", 31.2001, 29.9187),  # Alexandria, ~180 km
    _fac("near", 30.0500, 31.2400),  # < 1 km
    _fac("mid", 30.1000, 31.3000),  # ~9 km
    _fac("edge", 30.0444 + 10 / 111.195, 31.2357),  # exactly ~10 km north
]


def test_nearest_first_ordering_sets_distance():
    out = nearest(FACS, *ORIGIN)
    assert [f.name for f in out] == ["near", "mid", "edge", "far"]
    assert all(f.distance_km is not None for f in out)
    assert [f.distance_km for f in out] == sorted(f.distance_km for f in out)


def test_radius_filter_and_limit():
    out = nearest(FACS, *ORIGIN, radius_km=10.01)
    assert [f.name for f in out] == ["near", "mid", "edge"]
    assert all(f.distance_km <= 10.01 for f in out)
    assert [f.name for f in nearest(FACS, *ORIGIN, radius_km=5)] == ["near"]
    assert [f.name for f in nearest(FACS, *ORIGIN, limit=2)] == ["near", "mid"]
    assert nearest([], *ORIGIN, radius_km=5) == []


# --- geocoding -------------------------------------------------------------------------------

KNOWN = {
    "Cairo, Egypt": (30.0444, 31.2357),
    "Alexandria, Egypt": (31.2001, 29.9187),
    "London, United Kingdom": (51.5074, -0.1278),
    "Paris": (48.8566, 2.3522),
    "Tokyo": (35.6762, 139.6503),
    "New York": (40.7128, -74.0060),
    "Sao Paulo": (-23.5505, -46.6333),
    "Sydney, Australia": (-33.8688, 151.2093),
    "Rochester, MN": (44.0121, -92.4802),
    "Zürich": (47.3769, 8.5417),
}


@pytest.mark.parametrize("query,expected", KNOWN.items())
def test_geocode_known_cities(query, expected):
    place = geocode(query).best
    assert haversine_km(place.lat, place.lon, *expected) < 10, place


def test_geocode_is_case_and_accent_insensitive():
    assert geocode("cairo").best.country_code == "EG"
    assert geocode("ZURICH").best.name == "Zürich"
    assert normalize("  São-Paulo ") == "sao paulo"


def test_geocode_ambiguous_name_lists_suggestions():
    res = geocode("Alexandria")
    assert res.ambiguous
    labels = [p.label for p in res.candidates]
    assert res.best.country_code == "EG"  # most populous first
    assert "Alexandria, Virginia, United States" in labels
    assert any(p.country_code == "US" for p in res.candidates[1:])
    assert len({p.label for p in res.candidates}) == len(res.candidates)


def test_geocode_qualifiers_narrow_down():
    va = geocode("Alexandria, VA")
    assert not va.ambiguous and va.best.region == "Virginia"
    usa = geocode("Alexandria, USA")
    assert usa.ambiguous and all(p.country_code == "US" for p in usa.candidates)
    assert geocode("Alexandria, Egypt").best.country_code == "EG"
    assert geocode("Washington, D.C.").best.region == "District of Columbia"


def test_geocode_unknown_qualifier_is_noted_not_fatal():
    res = geocode("London, Ontario")
    assert res.notes and "Ontario" in res.notes[0]
    assert any(p.country_code == "CA" for p in res.candidates)


def test_geocode_unknown_name_gives_clear_message():
    with pytest.raises(UnknownPlaceError) as exc:
        geocode("Xyzzyqwv")
    assert isinstance(exc.value, BusiError)
    assert "Xyzzyqwv" in str(exc.value) and "latitude" in str(exc.value)


def test_geocode_typo_suggests_close_names():
    with pytest.raises(UnknownPlaceError, match="(?i)did you mean.*alexandria"):
        geocode("Alexandrai")


def test_geocode_name_not_in_country():
    with pytest.raises(UnknownPlaceError, match="Cairo, Egypt"):
        geocode("Cairo, France")


def test_geocode_empty_query():
    with pytest.raises(UnknownPlaceError):
        geocode("   ")


def test_latlon_input():
    assert parse_latlon("30.04, 31.23") == (30.04, 31.23)
    assert parse_latlon("-33.9 18.4") == (-33.9, 18.4)
    assert parse_latlon("Cairo") is None
    place = geocode("30.0444, 31.2357").best
    assert (place.lat, place.lon) == (30.0444, 31.2357)
    with pytest.raises(InvalidCoordinatesError):
        geocode("91, 200")
