"""The bundled offline list ``data/clinics.csv``: schema, ranges, duplicates, sources, locations."""

from __future__ import annotations

import csv

import pytest

from pipeline.clinics.bundled import BUNDLED_CSV, BUNDLED_KINDS, REQUIRED_COLUMNS, load_bundled, read_rows
from pipeline.clinics.errors import ClinicsDataError
from pipeline.clinics.geo import haversine_km
from pipeline.clinics.geocode import geocode

MAX_KM_FROM_CITY = 30  # catches wrong or invented coordinates: fix the row, never this number

ROWS = read_rows()


def test_schema():
    with BUNDLED_CSV.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert set(REQUIRED_COLUMNS) <= set(header)
    assert len(ROWS) >= 200
    for row in ROWS:
        assert None not in row, f"extra fields in {row}"
        for col in ("name", "city", "country", "lat", "lon", "type"):
            assert row[col].strip(), f"empty {col} in {row}"
        assert row["type"] in BUNDLED_KINDS, row


def test_coordinates_in_range():
    for row in ROWS:
        lat, lon = float(row["lat"]), float(row["lon"])
        assert -90 <= lat <= 90 and -180 <= lon <= 180, row
        assert (lat, lon) != (0.0, 0.0), row


def test_no_duplicates():
    full = [tuple(r.values()) for r in ROWS]
    assert len(full) == len(set(full)), "duplicate rows"
    keys = [(r["name"].casefold(), r["city"].casefold()) for r in ROWS]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"duplicate facilities: {dupes}"


def test_every_row_has_a_source_and_sane_website():
    for row in ROWS:
        assert row["source"].strip(), f"no source for {row['name']}"
        site = row["website"].strip()
        assert not site or (site.startswith("https://") and " " not in site), row


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['name'][:40]}|{r['city']}" for r in ROWS])
def test_facility_lies_near_the_city_it_names(row):
    """Within 30 km of the GeoNames coordinates of a city of that name in that country."""
    lat, lon = float(row["lat"]), float(row["lon"])
    result = geocode(f"{row['city']}, {row['country']}", limit=100)
    assert not result.notes, f"country not recognised: {result.notes}"
    assert len({p.country_code for p in result.candidates}) == 1  # the named country only
    dist = min(haversine_km(lat, lon, p.lat, p.lon) for p in result.candidates)
    assert dist <= MAX_KM_FROM_CITY, f"{row['name']} is {dist:.1f} km from {row['city']}"


def test_load_bundled_facilities():
    facs = load_bundled()
    assert len(facs) == len(ROWS)
    assert all(f.source and f.kind in BUNDLED_KINDS for f in facs)
    cairo = [f for f in facs if f.city == "Cairo"]
    assert any("National Cancer Institute" in f.name for f in cairo)


def test_load_bundled_errors(tmp_path):
    with pytest.raises(ClinicsDataError):
        load_bundled(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,city\nX,Y\n", encoding="utf-8")
    with pytest.raises(ClinicsDataError, match="lacks columns"):
        load_bundled(bad)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(",".join(REQUIRED_COLUMNS) + "\nX,Y,Z,abc,1,hospital,,s\n", encoding="utf-8")
    with pytest.raises(ClinicsDataError, match="bad coordinates"):
        load_bundled(wrong)
