"""``python -m pipeline idc train|evaluate|summary``: the IDC histopathology model set."""

from __future__ import annotations

import argparse
import json

from pipeline import paths


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``idc`` command group."""
    p = sub.add_parser("idc", help="IDC histopathology patches: pack summary, training, evaluation")
    isub = p.add_subparsers(dest="idc_command", required=True)
    s = isub.add_parser("summary", help="patches, IDC patches and patients per subset of the pack")
    tr = isub.add_parser("train", help="train the IDC patch classifier (EfficientNet-Lite2 from ImageNet)")
    tr.add_argument("--epochs", type=int, default=12)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (cosine to 0)")
    tr.add_argument("--size", type=int, default=96, help="side the backbone sees (patches are up-sampled)")
    tr.add_argument("--seed", type=int, default=1234)
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.add_argument("--steps", type=int, help="steps per epoch (smoke tests)")
    tr.add_argument("--limit", type=int, help="use only this many patches per subset (smoke tests)")
    tr.add_argument("--work-dir", default=str(paths.MODELS_DIR / "checkpoints" / "idc"))
    ev = isub.add_parser("evaluate", help="choose test-time settings on val, score val and test, the feature "
                                          "baseline beside it: models/idc/metrics.json")
    for q in (s, tr, ev):
        q.add_argument("--idc", help="IDC pack folder (default: $IDC_DIR, else data/IDC)")
    ev.add_argument("--note", help="what changed since the last evaluation (kept with this test reading)")
    ch = isub.add_parser("choose", help="compare candidate IDC models (models folders) on the validation patients only")
    ch.add_argument("candidates", nargs="+", help="models folders, each holding idc/idc_classifier.{keras,json}")
    ch.add_argument("--out", default=str(paths.MODELS_DIR / "experiments" / "idc_candidates.json"))
    for q in (tr, ev, ch):
        q.add_argument("--models-dir", default=str(paths.models_dir()))
    ch.add_argument("--idc", help="IDC pack folder (default: $IDC_DIR, else data/IDC)")
    ch.set_defaults(func=_choose)
    s.set_defaults(func=_summary)
    tr.set_defaults(func=_train)
    ev.set_defaults(func=_evaluate)


def _summary(args) -> int:
    from pipeline.data.idc import load_idc

    print(json.dumps(load_idc(args.idc).summary(), indent=2))
    return 0


def _train(args) -> int:
    from pipeline.training.idc import train_idc

    train_idc(args.idc, models_dir=args.models_dir, epochs=args.epochs, batch_size=args.batch_size,
              learning_rate=args.lr, network_size=args.size, seed=args.seed, resume=args.resume,
              steps=args.steps, limit=args.limit, work_dir=args.work_dir)
    return 0


def _evaluate(args) -> int:
    from pipeline.config import idc_dir_in
    from pipeline.training.idc_card import write_idc_card
    from pipeline.training.idc_evaluate import evaluate_idc

    metrics = evaluate_idc(args.idc, models_dir=args.models_dir, note=args.note)
    print(f"wrote {write_idc_card(idc_dir_in(args.models_dir))}")
    print(json.dumps({k: metrics["test"][k]["summary"] for k in ("network", "features")}, indent=2))
    return 0


def _choose(args) -> int:
    from pipeline.training.idc import compare_candidates

    print(json.dumps(compare_candidates(args.candidates, args.idc, out=args.out), indent=2))
    return 0
