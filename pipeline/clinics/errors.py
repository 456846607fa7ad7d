"""User-facing errors of the clinics finder."""

from pipeline.errors import BusiError


class ClinicsError(BusiError):
    """Base class for clinics-finder errors shown to the user."""


class UnknownPlaceError(ClinicsError):
    """A place name that the offline GeoNames index does not know."""


class InvalidCoordinatesError(ClinicsError):
    """Latitude/longitude outside the valid range or not numbers."""


class OverpassError(ClinicsError):
    """The live OpenStreetMap (Overpass) lookup failed: offline, timeout, HTTP error or bad JSON."""


class ClinicsDataError(ClinicsError):
    """The bundled ``data/clinics.csv`` is missing or malformed."""
