"""The map HTML and the Streamlit page, rendered headless and offline with AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.clinics import overpass
from pipeline.clinics.errors import OverpassError
from pipeline.clinics.facility import Facility
from pipeline.clinics.mapping import build_map, directions_url, view_bounds
from pipeline.clinics.search import search_facilities

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "clinics.py")


def test_map_has_one_marker_per_facility():
    res = search_facilities(30.0444, 31.2357, 25, offline=True)
    assert len(res.facilities) >= 5
    html = build_map(res.lat, res.lon, res.radius_km, res.facilities).get_root().render()
    assert html.count("L.marker(") == len(res.facilities)
    assert html.count("L.circleMarker(") == 1  # the searched point
    assert "openstreetmap.org/directions" in html
    assert "km away" in html


def test_map_fits_every_facility_shown_and_needs_no_marker_images():
    res = search_facilities(44.0, 10.0, 5, offline=True)  # nothing within 5 km: the nearest ones, far away
    far = max(f.distance_km for f in res.facilities)
    assert far > 5
    (south, west), (north, east) = view_bounds(res.lat, res.lon, res.radius_km, res.facilities)
    assert all(south <= f.lat <= north and west <= f.lon <= east for f in res.facilities)
    assert south < res.lat - 5 / 111 + 1e-9 and north > res.lat + 5 / 111 - 1e-9  # the circle too
    html = build_map(res.lat, res.lon, res.radius_km, res.facilities).get_root().render()
    assert "fitBounds" in html
    assert "L.Marker.prototype.options.icon = L.divIcon(" in html  # no default marker-icon.png is ever asked for
    assert html.index("L.Marker.prototype.options.icon") < html.index("L.marker(")


def test_map_popup_escapes_and_links():
    fac = Facility(name="<script>x</script>", lat=30.05, lon=31.24, website="example.org",
                   phone="+20 1", distance_km=1.0)
    html = build_map(30.0, 31.0, 5, [fac]).get_root().render()
    assert "<script>x</script>" not in html
    assert "https://example.org" in html
    assert "30.00000%2C31.00000%3B30.05000%2C31.24000" in directions_url(30, 31, 30.05, 31.24)


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run(timeout=60)
    assert not at.exception, at.exception
    return at


def test_page_renders_offline(monkeypatch):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    at = _app()
    assert "Clinics" in at.title[0].value
    assert any("not a medical device" in c.value for c in at.caption)  # disclaimer()
    assert at.button(key="clinics_search")
    assert not at.dataframe  # nothing until Search


def test_page_search_with_offline_env(monkeypatch):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    monkeypatch.setattr(overpass, "requests_transport", _no_network)
    at = _app()
    at.text_input(key="clinics_place").input("Cairo, Egypt").run()
    at.button(key="clinics_search").click().run()
    assert not at.exception, at.exception
    assert any("offline list" in w.value for w in at.warning)
    df = at.dataframe[0].value
    assert len(df) >= 3 and "National Cancer Institute (Cairo University)" in set(df["Name"])
    assert list(df["Distance (km)"]) == sorted(df["Distance (km)"])


def _no_network(url, query, timeout, headers):
    raise OverpassError(f"{url} unreachable (ConnectionError)")


def test_page_network_failure_falls_back(monkeypatch, tmp_path):
    monkeypatch.delenv("BUSI_OFFLINE", raising=False)
    monkeypatch.setattr(overpass, "requests_transport", _no_network)
    monkeypatch.setattr(overpass, "DEFAULT_CACHE_DIR", tmp_path)  # no stale live cache
    at = _app()
    at.text_input(key="clinics_place").input("Alexandria").run()
    choice = at.selectbox(key="clinics_choice")
    assert any("Egypt" in o for o in choice.options) and any("Virginia" in o for o in choice.options)
    at.slider(key="clinics_radius").set_value(17).run()
    at.button(key="clinics_search").click().run()
    assert not at.exception, at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "unreachable" in warning and "offline list" in warning
    assert "Alexandria Main University Hospital" in set(at.dataframe[0].value["Name"])


@pytest.mark.parametrize("query", ["Xyzzyqwv"])
def test_page_unknown_place_shows_error(monkeypatch, query):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    at = _app()
    at.text_input(key="clinics_place").input(query).run()
    assert not at.exception
    assert any(query in e.value for e in at.error)


def test_page_latlon_entry(monkeypatch):
    monkeypatch.setenv("BUSI_OFFLINE", "1")
    at = _app()
    at.radio(key="clinics_mode").set_value("Latitude / longitude").run()
    at.number_input(key="clinics_lat").set_value(40.7640).run()
    at.number_input(key="clinics_lon").set_value(-73.9560).run()
    at.button(key="clinics_search").click().run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["Name"].iloc[0] == "Memorial Sloan Kettering Cancer Center"


def test_map_needs_no_cdn_and_has_an_offline_base_layer():
    import re

    from pipeline.clinics.mapping import LEAFLET_JS, base_layer_geojson, leaflet_assets

    res = search_facilities(30.0444, 31.2357, 10, offline=True)
    html = build_map(res.lat, res.lon, res.radius_km, res.facilities,
                     places=[("Giza", 30.01, 31.21)]).get_root().render()
    srcs = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)
    assert srcs and all(s.startswith("data:") for s in srcs), [s[:60] for s in srcs]
    assert "https://cdn" not in html and "cdnjs" not in html and "jquery" not in html.lower()
    assert "$(" not in html  # folium's Popup needs jQuery; ours does not
    js, css = leaflet_assets()
    assert js.startswith("data:text/javascript;base64,") and css.startswith("data:text/css;base64,")
    assert b"Leaflet 1.9.4" in LEAFLET_JS.read_bytes()[:200]
    assert "busiBasemap" in html and "Natural Earth" in html and "Giza" in html
    assert 100_000 < len(base_layer_geojson()) < 300_000  # simplified, small payload
    # the searched point is the only circle marker; the tile URL template stays (online use)
    assert html.count("L.circleMarker(") == 1 and "tile.openstreetmap.org" in html


def test_topojson_decoding():
    from pipeline.clinics.mapping import topojson_polygons

    topo = {"transform": {"scale": [1, 1], "translate": [10, 20]},
            "arcs": [[[0, 0], [1, 0], [0, 1]], [[1, 1], [-1, 0], [0, -1]]],
            "objects": {"countries": {"geometries": [
                {"type": "Polygon", "arcs": [[0, 1]]},
                {"type": "MultiPolygon", "arcs": [[[~1, ~0]]]},
                {"type": None}]}}}
    square = [(10, 20), (11, 20), (11, 21), (10, 21), (10, 20)]
    polys = topojson_polygons(topo)
    assert polys[0] == [square]
    assert polys[1] == [square[::-1]]
    assert len(polys) == 2


def test_nearby_places_sorted_by_population():
    from pipeline.clinics.mapping import nearby_places

    cities = {"1": {"name": "Big", "latitude": 30.0, "longitude": 31.0, "population": 10},
              "2": {"name": "Small", "latitude": 30.05, "longitude": 31.0, "population": 1},
              "3": {"name": "Far", "latitude": 35.0, "longitude": 31.0, "population": 100}}
    assert nearby_places(cities, 30.0, 31.0, 20) == [("Big", 30.0, 31.0), ("Small", 30.05, 31.0)]
    # labels closer than the spacing to a bigger town are left out (they would overlap)
    assert nearby_places(cities, 30.0, 31.0, 20, spacing_km=10) == [("Big", 30.0, 31.0)]
