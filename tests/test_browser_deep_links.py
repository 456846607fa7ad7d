"""Deep links keep the app's own navigation: a page opened directly by its URL (a bookmark, a
shared link, a reload) must show the app's sidebar (disclaimer, the four nav entries) and
its title, not Streamlit's legacy auto-discovered page list ("app, clinics, dataset, ...").

Skips when Chromium or the playwright package is absent (`make browser` installs Chromium).
"""

from __future__ import annotations

import pytest

from bench.browser import (
    PAGE_TITLES,
    ROOT,
    launch,
    wait_idle,
    wait_title,
)
from dashboard.common import DISCLAIMER

SHOTS = ROOT / "test-output" / "screenshots"
NAV = ["Diagnose", "Dataset", "Models", "Clinics", "Histopathology (IDC)"]


pytestmark = pytest.mark.full  # a real browser


def test_pages_opened_by_url_keep_the_app_navigation(chromium, offline_app):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    assert not (ROOT / "dashboard" / "pages").exists(), "dashboard/pages/ would trigger legacy auto-discovery"
    nav = NAV if (ROOT / "dashboard" / "views" / "clinics.py").is_file() else NAV[:3]
    url = offline_app
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            for name in ("models", "clinics"):
                if name.capitalize() not in nav:
                    continue
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(f"{url}/{name}")  # directly, not through the sidebar
                wait_title(page, PAGE_TITLES[name])
                wait_idle(page)
                sidebar = page.locator('[data-testid="stSidebar"]')
                assert DISCLAIMER[:40] in sidebar.inner_text(), f"no app sidebar on /{name}"
                links = page.locator('[data-testid="stSidebarNav"] a')
                # each link's text is "<material icon name>\n\n<label>": keep the label
                labels = [t.strip().splitlines()[-1].strip() for t in links.all_inner_texts()]
                assert labels == nav, labels  # the app's own entries, in order, nothing else
                hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
                assert not any(h.rstrip("/").endswith("/app") for h in hrefs), hrefs
                active = page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')
                if active.count():
                    assert active.first.inner_text().strip().splitlines()[-1] == name.capitalize()
                assert page.get_by_role("heading", name=PAGE_TITLES[name]).count()
                assert not page.locator('[data-testid="stException"]').count()
                assert not errors, errors
                page.screenshot(path=str(SHOTS / f"deep_link_{name}.png"))
                page.close()
        finally:
            browser.close()
