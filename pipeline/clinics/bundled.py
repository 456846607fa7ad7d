"""The bundled offline list ``data/clinics.csv`` of real cancer and breast-imaging centres."""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

from pipeline.clinics.errors import ClinicsDataError
from pipeline.clinics.facility import KIND_LABELS, Facility
from pipeline.paths import DATA_DIR

BUNDLED_CSV = DATA_DIR / "clinics.csv"
REQUIRED_COLUMNS = ("name", "city", "country", "lat", "lon", "type", "website", "source")
BUNDLED_KINDS = ("cancer_centre", "breast_imaging", "hospital")
OFFLINE_LABEL = "offline list of major cancer centres"


def read_rows(path: str | os.PathLike = BUNDLED_CSV) -> list[dict[str, str]]:
    """Raw CSV rows (strings), after checking the header."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ClinicsDataError(f"{path} lacks columns: {', '.join(missing)}")
            return [dict(r) for r in reader]
    except OSError as exc:
        raise ClinicsDataError(f"Cannot read the offline clinics list {path}: {exc}") from exc


def _row_to_facility(row: dict[str, str], line: int) -> Facility:
    try:
        lat, lon = float(row["lat"]), float(row["lon"])
    except (TypeError, ValueError) as exc:
        raise ClinicsDataError(f"clinics.csv line {line}: bad coordinates {row.get('lat')!r}, {row.get('lon')!r}") from exc
    kind = (row.get("type") or "").strip()
    if kind not in KIND_LABELS:
        raise ClinicsDataError(f"clinics.csv line {line}: unknown type {kind!r}")
    return Facility(
        name=row["name"].strip(), lat=lat, lon=lon, kind=kind,
        city=row["city"].strip(), country=row["country"].strip(),
        address=(row.get("address") or "").strip(), phone=(row.get("phone") or "").strip(),
        website=(row.get("website") or "").strip(), source=row["source"].strip(),
        breast_relevant=kind in ("cancer_centre", "breast_imaging"),
    )


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> tuple[Facility, ...]:
    return tuple(_row_to_facility(r, i + 2) for i, r in enumerate(read_rows(path)))


def load_bundled(path: str | os.PathLike = BUNDLED_CSV) -> list[Facility]:
    """All facilities of the offline list (cached per file modification time)."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError as exc:
        raise ClinicsDataError(f"The offline clinics list {p} is missing.") from exc
    return list(_load_cached(str(p), mtime))
