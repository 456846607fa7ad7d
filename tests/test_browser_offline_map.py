"""The Clinics map in a real browser with every non-local request blocked (as on a machine
with no internet access): Leaflet must come from the app itself, the markers, the search
circle and the offline base layer (Natural Earth borders) must be drawn, and popups must open.

Skips when Chromium or the playwright package is absent (`make browser` installs Chromium).
"""

from __future__ import annotations

import pytest

from bench.browser import (
    PAGE_TITLES,
    ROOT,
    block_outside,
    fit_viewport,
    launch,
    open_page,
    search_clinics,
    wait_idle,
    wait_title,
)
from pipeline.clinics.geocode import geocode
from pipeline.clinics.search import search_facilities

SHOTS = ROOT / "test-output" / "screenshots"
MAP_IFRAME = 'iframe[title*="folium"]'


pytestmark = pytest.mark.full  # a real browser


def test_clinics_map_draws_offline(chromium, offline_app):
    from playwright.sync_api import sync_playwright

    # What the page will find for its default place ("Cairo, Egypt", 10 km) from the offline list.
    place = geocode("Cairo, Egypt").best
    expected = len(search_facilities(place.lat, place.lon, 10.0, offline=True).facilities)
    assert expected >= 1
    SHOTS.mkdir(parents=True, exist_ok=True)

    url = offline_app
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            blocked: list[tuple[str, str]] = []
            errors: list[str] = []
            block_outside(page, lambda kind, url: blocked.append((kind, url)))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            wait_title(page, PAGE_TITLES["diagnose"])
            open_page(page, url, "clinics")
            wait_title(page, PAGE_TITLES["clinics"])
            search_clinics(page)
            wait_idle(page)

            page.locator(MAP_IFRAME).first.scroll_into_view_if_needed()
            frame = page.frame_locator(MAP_IFRAME).first
            frame.locator(".leaflet-container").first.wait_for(timeout=60_000)
            frame.locator(".leaflet-marker-icon").first.wait_for(timeout=30_000)
            assert frame.locator(".leaflet-marker-icon").count() == expected
            # the search circle and the searched point are SVG paths in the overlay pane
            assert frame.locator(".leaflet-overlay-pane path.leaflet-interactive").count() >= 2
            # the offline base layer: Natural Earth borders in their own pane below the tiles
            base = frame.locator(".leaflet-busiBasemap-pane path")
            assert base.count() >= 1
            # tiles could not load, so the map says what it is showing
            frame.locator(".busi-offline-note").wait_for(timeout=30_000)
            assert "Offline base map" in frame.locator(".busi-offline-note").inner_text()
            assert "Hospital" in frame.locator(".busi-legend").inner_text()

            fit_viewport(page)
            page.locator(MAP_IFRAME).first.scroll_into_view_if_needed()
            frame.locator(".leaflet-marker-icon").first.click()
            popup = frame.locator(".leaflet-popup-content")
            popup.wait_for(timeout=10_000)
            assert "km away" in popup.inner_text()
            assert "Directions" in popup.inner_text()
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / "clinics_offline_map.png"), full_page=True)
            page.locator(MAP_IFRAME).first.screenshot(path=str(SHOTS / "clinics_offline_map_only.png"))

            # Zoomed out, the base layer shows coastlines and borders (at city zoom it is
            # clipped to the view); the markers stay.
            frame.locator(".leaflet-popup-close-button").click()
            for _ in range(8):
                frame.locator(".leaflet-control-zoom-out").click()
                page.wait_for_timeout(350)  # let each zoom animation start; the check below polls
            for _ in range(40):  # the coastline path grows once the zoomed-out view is drawn
                if len(base.first.get_attribute("d") or "") > 1000:
                    break
                page.wait_for_timeout(250)
            assert len(base.first.get_attribute("d") or "") > 1000
            assert frame.locator(".leaflet-marker-icon").count() == expected
            page.locator(MAP_IFRAME).first.screenshot(path=str(SHOTS / "clinics_offline_map_zoomed_out.png"))

            assert not page.locator('[data-testid="stException"]').count()
            assert not errors, errors
            # Only images were wanted from outside (map tiles; Streamlit's favicon for a
            # :material/...: page icon): no script, style sheet, font, document or data
            # request went to a CDN or any other host.
            assert any("tile.openstreetmap.org" in u for _, u in blocked)
            needed = {"script", "stylesheet", "font", "document", "xhr", "fetch", "websocket"}
            wanted = sorted({(kind, u) for kind, u in blocked if kind in needed})
            assert not wanted, wanted[:10]
        finally:
            browser.close()
    assert (SHOTS / "clinics_offline_map_only.png").stat().st_size > 10_000
