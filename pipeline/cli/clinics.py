"""``python -m pipeline clinics search PLACE``: nearest cancer/breast-imaging care, live or offline."""

from __future__ import annotations

import argparse

import pandas as pd

from pipeline.clinics.errors import ClinicsError
from pipeline.clinics.geocode import geocode
from pipeline.clinics.search import search_facilities, to_dataframe


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``clinics`` command group."""
    clinics = subparsers.add_parser("clinics", help="find hospitals and cancer centres near a place")
    sub = clinics.add_subparsers(dest="clinics_command", required=True)
    search = sub.add_parser("search", help="nearest facilities to a place name or 'lat, lon'")
    search.add_argument("place", help='e.g. "Cairo, Egypt", "Alexandria, VA" or "30.04, 31.24"')
    search.add_argument("--radius", type=float, default=10.0, help="search radius in km (default 10)")
    search.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    search.add_argument("--offline", action="store_true", help="skip OpenStreetMap, use the bundled list")
    search.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    """Geocode, search, print the table and which source was used."""
    if args.radius <= 0:
        raise ClinicsError("--radius must be a positive number of km")
    result = geocode(args.place)
    place = result.best
    print(f"Location: {place.label} ({place.lat:.4f}, {place.lon:.4f})")
    for note in result.notes:
        print(f"note: {note}")
    if result.ambiguous:
        others = "; ".join(p.label for p in result.candidates[1:6])
        print(f"note: '{args.place}' is ambiguous; using the most populous. Also: {others}")
    found = search_facilities(place.lat, place.lon, args.radius, offline=True if args.offline else None,
                              limit=args.limit)
    print(f"Source: {'live OpenStreetMap' if found.is_live else 'offline list'} — {found.message}")
    table = to_dataframe(found.facilities).drop(columns=["Source"])
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200,
                           "display.max_colwidth", 45):
        print(table.to_string(index=False) if len(table) else "(no facilities)")
    return 0
