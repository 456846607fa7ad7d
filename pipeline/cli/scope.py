"""``python -m pipeline scope fit``: fit and evaluate the scope gate ("is this a breast-ultrasound image?")."""

from __future__ import annotations

import argparse

from pipeline import paths


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``scope`` command group."""
    sc = sub.add_parser("scope", help="the scope gate that refuses images that are not breast ultrasound")
    ssub = sc.add_subparsers(dest="scope_command", required=True)
    fit = ssub.add_parser("fit", help="fit on BUSI + BUS-BRA train (clean, under display variations and lesion-free "
                                      "regions), threshold "
                                      "on both val sets, evaluate; "
                                      "writes models/scope_gate.{npz,json} and models/scope_metrics.json")
    fit.add_argument("--data", help="BUSI folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
    fit.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    fit.add_argument("--models-dir", default=str(paths.models_dir()))
    fit.add_argument("--components", type=int, default=None, help="PCA components (default: the module's)")
    fit.add_argument("--shifted-per-image", type=int, default=None,
                     help="display variations per validation/test image (train: 1; default: the module's)")
    fit.set_defaults(func=_fit)


def _fit(args: argparse.Namespace) -> int:
    from pipeline.errors import DatasetError
    from pipeline.inference.predictor import Predictor
    from pipeline.training import scope_fit

    busi, busbra = paths.dataset_dir(args.data), paths.busbra_dir(args.busbra)
    for name, root in (("BUSI", busi), ("BUS-BRA", busbra)):
        if not root.is_dir():
            raise DatasetError(f"{name} folder not found: {root}")
    print(f"loading the baseline classifier from {args.models_dir}", flush=True)
    predictor = Predictor(args.models_dir, models=("raw",))
    scope_fit.fit_and_evaluate(predictor, busi, busbra, args.models_dir,
                               n_components=args.components or scope_fit.N_COMPONENTS,
                               shifted_per_image=args.shifted_per_image or scope_fit.SHIFTED_PER_IMAGE,
                               say=lambda s: print(s, flush=True))
    return 0
