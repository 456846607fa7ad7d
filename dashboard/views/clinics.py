"""Clinics page: breast-imaging and cancer care near a place, live OpenStreetMap or offline list.

A view only: geocoding, the Overpass search with its fallback, the map and the table all
come from ``pipeline.clinics``.
"""

from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from dashboard.common import disclaimer
from pipeline.clinics.bundled import OFFLINE_LABEL, load_bundled
from pipeline.clinics.errors import ClinicsError
from pipeline.clinics.geocode import GeocodeResult, geocode, get_index
from pipeline.clinics.mapping import KIND_COLOURS, KIND_LABELS, build_map, nearby_places
from pipeline.clinics.search import SearchResult, offline_forced, search_facilities, to_dataframe

RESULT_KEY = "clinics_result"


@st.cache_resource(show_spinner="Loading the offline GeoNames place index…")
def _place_index():
    return get_index()


@st.cache_data(show_spinner=False, max_entries=256)
def _geocode(query: str) -> GeocodeResult:
    return geocode(query, index=_place_index())


@st.cache_data(show_spinner=False)
def _bundled():
    return load_bundled()


@st.cache_data(show_spinner=False, ttl=600, max_entries=64)
def _search(lat: float, lon: float, radius_km: float, offline: bool) -> SearchResult:
    return search_facilities(lat, lon, radius_km, offline=offline, bundled=_bundled())


st.title("Clinics and cancer centres nearby")
disclaimer()
st.markdown(
    "Find hospitals, clinics and breast-imaging / cancer care around a place. Live data comes "
    "from OpenStreetMap; when it cannot be reached, a bundled list of major cancer centres is "
    "shown instead. Always confirm services and referrals with your doctor."
)

for key, value in (("clinics_place", "Cairo, Egypt"), ("clinics_lat", 30.0444), ("clinics_lon", 31.2357),
                   ("clinics_radius", 10)):
    st.session_state.setdefault(key, value)  # defaults set once, so the kept values (state.KEEP_KEYS) win

mode = st.radio("Location", ["Place name", "Latitude / longitude"], horizontal=True, key="clinics_mode")
point: tuple[float, float, str] | None = None
if mode == "Place name":
    query = st.text_input("City (optionally with country or US state)", key="clinics_place",
                          help='e.g. "Alexandria", "Alexandria, VA", "Lyon, France"')
    try:
        found = _geocode(query)
    except ClinicsError as exc:
        st.error(str(exc))
    else:
        for note in found.notes:
            st.caption(note)
        place = found.best
        if found.ambiguous:
            place = st.selectbox(
                f"Several places are called “{query.split(',')[0].strip()}”: which one?",
                found.candidates, format_func=lambda p: p.suggestion, key="clinics_choice",
            )
        point = (place.lat, place.lon, place.label)
        coords = f"{place.lat:.4f}, {place.lon:.4f}"
        st.caption(f"Location: {place.label}" + ("" if place.label.strip() == coords else f" — {coords}"))
else:
    c1, c2 = st.columns(2)
    lat = c1.number_input("Latitude", -90.0, 90.0, step=0.01, format="%.4f", key="clinics_lat")
    lon = c2.number_input("Longitude", -180.0, 180.0, step=0.01, format="%.4f", key="clinics_lon")
    point = (float(lat), float(lon), f"{lat:.4f}, {lon:.4f}")

radius = st.slider("Search radius (km)", min_value=1, max_value=50, key="clinics_radius")
offline = offline_forced()
if offline:
    st.info(f"Offline mode (BUSI_OFFLINE=1): only the {OFFLINE_LABEL} is used.")

# The result is kept with the query it answers (and survives page switches); once a search was made, a new place
# or radius searches again, so the map and the table always belong to the location on screen.
wanted = None if point is None else (round(point[0], 4), round(point[1], 4), float(radius), offline)
kept = st.session_state.get(RESULT_KEY)
pressed = st.button("Search", type="primary", disabled=point is None, key="clinics_search")
if point is not None and (pressed or (kept is not None and kept["query"] != wanted)):
    with st.spinner("Searching OpenStreetMap…" if not offline else "Searching the offline list…"):
        try:
            kept = {"query": wanted, "label": point[2], "result": _search(point[0], point[1], float(radius), offline)}
        except ClinicsError as exc:
            st.error(str(exc))
            kept = None
        st.session_state[RESULT_KEY] = kept

if point is None:
    if kept is not None:
        st.caption("No results shown: the place above was not found. Correct it to search again.")
elif kept is not None and kept["query"] == wanted:
    label, result = kept["label"], kept["result"]
    outside = [f for f in result.facilities if f.distance_km is not None and f.distance_km > result.radius_km]
    st.subheader(f"Near {label} — {result.radius_km:g} km")
    if result.is_live:
        st.success(f"Source: {result.message}")
    else:
        st.warning(f"Source: {OFFLINE_LABEL}. {result.reason}")
    legend = " · ".join(f"{KIND_LABELS.get(kind, kind)}: {colour}" for kind, colour in KIND_COLOURS.items())
    st.caption(f"Marker colours — {legend}; ★ = oncology / radiology / gynaecology / breast. "
               "Yellow dot = searched location. Click a marker for details and directions."
               + (f" The map shows all {len(result.facilities)} places listed, {len(outside)} of them outside the "
                  "search circle." if outside else ""))
    places = nearby_places(_place_index().cities, result.lat, result.lon, max(3 * result.radius_km, 15))
    fmap = build_map(result.lat, result.lon, result.radius_km, result.facilities, places)
    st_folium(fmap, returned_objects=[], height=480, use_container_width=True, key="clinics_map")
    st.caption("Nearest first. The map works offline: without internet access its street tiles cannot load, "
               "so it shows country borders and coastlines (Natural Earth) under the same markers.")
    table = to_dataframe(result.facilities)
    table["Website"] = table["Website"].map(  # a clickable link needs its scheme
        lambda u: u if not u or u.startswith(("http://", "https://")) else f"https://{u}")
    sources = sorted(set(table["Source"].dropna()))
    st.dataframe(
        table.drop(columns=["Source"]) if len(sources) <= 1 else table,
        hide_index=True, width="stretch",
        column_order=["Name", "Distance (km)", "Type", "City / address", "Website", "Phone", "Breast/oncology",
                      "Source"],
        column_config={  # the rest sized to their content
            "Name": st.column_config.TextColumn("Name", width="medium"),
            "Distance (km)": st.column_config.NumberColumn("km", format="%.1f", width="small",
                                                           help="Distance from the searched location (km)"),
            "Website": st.column_config.LinkColumn("Website", display_text=r"https?://(?:www\.)?([^/?#]+).*"),
            "Breast/oncology": st.column_config.TextColumn("Breast care", width="small",
                                                           help="Oncology, radiology, gynaecology or breast care"),
        },
        key="clinics_table",
    )
    if len(sources) == 1:
        st.caption(f"Source of every row: {sources[0]}.")
    if result.is_live:
        st.caption("Map data © OpenStreetMap contributors (ODbL).")
else:
    st.caption("Choose a place and press **Search**.")
