"""``python -m pipeline shift``: the scanner-shift benchmark (models/shift_metrics.json)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from pathlib import Path

from pipeline import paths

SHIFT_FILE = "shift_metrics.json"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``shift`` command."""
    from pipeline.training.shift import VARIATIONS

    p = sub.add_parser("shift", help="scanner-shift benchmark: BUSI test and BUS-BRA's held-out fold under display "
                                     "variations (tints, pictograms, calipers, gain, padding, ...), baseline vs refined")
    p.add_argument("--data", help="BUSI folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
    p.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA); skipped when absent")
    p.add_argument("--busbra-limit", type=int, help="use this many BUS-BRA test images (half per class)")
    p.add_argument("--limit", type=int, help="use this many BUSI test images (a third per class; smoke runs)")
    p.add_argument("--variation", action="append", choices=sorted(VARIATIONS), help="only these (repeatable)")
    p.add_argument("--models-dir", default=str(paths.models_dir()))
    p.add_argument("--out", help=f"results JSON (default: <models-dir>/{SHIFT_FILE})")
    p.set_defaults(func=_shift)


def _shift(args) -> int:
    from datetime import datetime

    from pipeline.data.items import load_busbra_items, load_items
    from pipeline.inference.predictor import Predictor
    from pipeline.inference.report import json_safe
    from pipeline.progress import printer
    from pipeline.training.shift import run_shift

    datasets = {"BUSI test": load_items(paths.dataset_dir(args.data), "test", limit=args.limit)}
    if paths.busbra_available(args.busbra):
        datasets["BUS-BRA fold 5"] = load_busbra_items(paths.busbra_dir(args.busbra), "test", limit=args.busbra_limit)
    predictor = Predictor(args.models_dir)
    result = run_shift(predictor, datasets, args.variation, progress=printer("shift benchmark", every=50))
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["how"] = ("python -m pipeline shift" + (f" --busbra-limit {args.busbra_limit}" if args.busbra_limit else "")
                     + (f" --limit {args.limit}" if args.limit else "") + ": every image clean and under each "
                     "variation at two strengths (fixed seed per image), sent as PNG/JPEG bytes through the upload "
                     "path (imageio.load_image -> Predictor.predict); nothing is chosen on these results")
    out = Path(args.out or Path(args.models_dir) / SHIFT_FILE)
    out.write_text(json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")
    print(f"wrote {out}")
    return 0
