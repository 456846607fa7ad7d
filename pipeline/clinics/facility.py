"""The record shared by the live (OpenStreetMap) and offline (bundled) sources."""

from __future__ import annotations

from dataclasses import dataclass, replace

# Facility kinds, also the marker colours on the map.
KIND_LABELS = {
    "cancer_centre": "Cancer centre",
    "breast_imaging": "Breast imaging",
    "hospital": "Hospital",
    "clinic": "Clinic",
    "doctors": "Doctor's practice",
}


@dataclass(frozen=True)
class Facility:
    """One hospital, clinic, doctor's practice or cancer centre."""

    name: str
    lat: float
    lon: float
    kind: str = "hospital"
    city: str = ""
    country: str = ""
    address: str = ""
    phone: str = ""
    website: str = ""
    source: str = ""
    specialities: str = ""  # e.g. "oncology; radiology"
    breast_relevant: bool = False  # oncology/radiology/gynaecology/mammography/breast flag
    osm_url: str = ""
    distance_km: float | None = None

    @property
    def kind_label(self) -> str:
        """Human-readable kind."""
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())

    @property
    def location_text(self) -> str:
        """Address when known, else "city, country"."""
        if self.address:
            return self.address
        return ", ".join(p for p in (self.city, self.country) if p)

    def with_distance(self, km: float) -> Facility:
        """A copy with ``distance_km`` set."""
        return replace(self, distance_km=km)
