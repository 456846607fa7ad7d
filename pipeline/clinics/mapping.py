"""The folium map: searched point, radius circle, one coloured marker per facility."""

from __future__ import annotations

import html
import math
from urllib.parse import quote

import folium

from pipeline.clinics.facility import Facility

KIND_COLOURS = {
    "cancer_centre": "purple",
    "breast_imaging": "pink",
    "hospital": "red",
    "clinic": "blue",
    "doctors": "green",
}


def directions_url(from_lat: float, from_lon: float, to_lat: float, to_lon: float) -> str:
    """OpenStreetMap routing link between two points."""
    route = quote(f"{from_lat:.5f},{from_lon:.5f};{to_lat:.5f},{to_lon:.5f}")
    return f"https://www.openstreetmap.org/directions?engine=fossgis_osrm_car&route={route}"


def popup_html(f: Facility, origin: tuple[float, float]) -> str:
    """Popup body: name, kind, address, phone, website, distance, directions link (escaped)."""
    e = html.escape
    lines = [f"<b>{e(f.name)}</b>", e(f.kind_label + (" · breast/oncology" if f.breast_relevant else ""))]
    if f.location_text:
        lines.append(e(f.location_text))
    if f.specialities:
        lines.append(f"Specialities: {e(f.specialities)}")
    if f.phone:
        lines.append(f"Phone: {e(f.phone)}")
    if f.website:
        url = f.website if f.website.startswith(("http://", "https://")) else f"https://{f.website}"
        lines.append(f'<a href="{e(url)}" target="_blank" rel="noopener">Website</a>')
    if f.distance_km is not None:
        lines.append(f"{f.distance_km:.1f} km away")
    lines.append(
        f'<a href="{e(directions_url(origin[0], origin[1], f.lat, f.lon))}" target="_blank" '
        f'rel="noopener">Directions (OpenStreetMap)</a>'
    )
    return "<br>".join(lines)


def zoom_for_radius(radius_km: float) -> int:
    """A zoom level that shows roughly the whole search circle."""
    return max(2, min(16, int(round(14 - math.log2(max(radius_km, 0.5) / 1.5)))))


def build_map(lat: float, lon: float, radius_km: float, facilities: list[Facility]) -> folium.Map:
    """Folium map centred on the searched point with one ``folium.Marker`` per facility.

    The searched point is a circle marker (not a ``Marker``) so markers map 1:1 to facilities.
    """
    m = folium.Map(location=[lat, lon], zoom_start=zoom_for_radius(radius_km), control_scale=True)
    folium.Circle([lat, lon], radius=radius_km * 1000, color="#3388ff", weight=1,
                  fill=True, fill_opacity=0.05).add_to(m)
    folium.CircleMarker([lat, lon], radius=7, color="black", fill=True, fill_color="yellow",
                        fill_opacity=1, tooltip="Searched location").add_to(m)
    for f in facilities:
        folium.Marker(
            [f.lat, f.lon],
            tooltip=html.escape(f.name),
            popup=folium.Popup(popup_html(f, (lat, lon)), max_width=320),
            icon=folium.Icon(color=KIND_COLOURS.get(f.kind, "gray"),
                             icon="star" if f.breast_relevant else "plus-sign"),
        ).add_to(m)
    return m
