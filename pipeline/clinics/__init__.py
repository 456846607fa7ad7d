"""Find breast-imaging and cancer care near a place: offline geocoding, live OpenStreetMap
(Overpass) facilities with an on-disk cache, and a bundled offline list as fallback.

No Streamlit here; ``dashboard/views/clinics.py`` is only a view over this package.
"""

from pipeline.clinics.errors import (
    ClinicsDataError,
    ClinicsError,
    InvalidCoordinatesError,
    OverpassError,
    UnknownPlaceError,
)
from pipeline.clinics.facility import Facility
from pipeline.clinics.geo import haversine_km, nearest
from pipeline.clinics.geocode import GeocodeResult, Place, geocode, parse_latlon
from pipeline.clinics.search import SearchResult, search_facilities, to_dataframe

__all__ = [
    "ClinicsDataError",
    "ClinicsError",
    "Facility",
    "GeocodeResult",
    "InvalidCoordinatesError",
    "OverpassError",
    "Place",
    "SearchResult",
    "UnknownPlaceError",
    "geocode",
    "haversine_km",
    "nearest",
    "parse_latlon",
    "search_facilities",
    "to_dataframe",
]
