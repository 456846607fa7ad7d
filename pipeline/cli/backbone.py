"""``python -m pipeline backbone convert-lite2``: ImageNet EfficientNet-Lite2 weights from PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline import paths
from pipeline.errors import ModelLoadError

DEFAULT_NPZ = paths.LITE2_NPZ
DEFAULT_OUT = paths.LITE2_WEIGHTS
EXPORT_HINT = "create it " + paths.TORCH_EXPORT_COMMAND


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``backbone`` command group."""
    group = sub.add_parser("backbone", help="pretrained backbones")
    bsub = group.add_subparsers(dest="backbone_command", required=True)
    p = bsub.add_parser("convert-lite2", help="convert + verify EfficientNet-Lite2 ImageNet weights (torch .npz -> Keras)")
    p.add_argument("--npz", default=str(DEFAULT_NPZ), help="torch export from pipeline.nets.lite2_export")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="Keras weights file (*.weights.h5)")
    p.add_argument("--json", action="store_true", help="print the verification result as JSON")
    p.set_defaults(func=_convert_lite2)


def _convert_lite2(args: argparse.Namespace) -> int:
    npz, out = Path(args.npz), Path(args.out)
    if not npz.is_file():
        raise ModelLoadError(f"torch export not found: {npz}; " + EXPORT_HINT.format(npz=npz))
    if not out.name.endswith(".weights.h5"):
        raise ModelLoadError(f"--out must end in .weights.h5, got {out.name}")
    from pipeline.nets.lite2 import convert_lite2  # imports keras/tensorflow: only when needed

    result = convert_lite2(npz, out)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"pooled-feature max abs diff vs torch: {result['max_abs_diff_features']:.3g} (tolerance 1e-3)")
    print(f"logits max abs diff vs torch:         {result['max_abs_diff_logits']:.3g}")
    print(f"top-1 agrees with torch:              {result['top1_agree']} {result['top1']}")
    print(f"reloaded file max abs diff:           {result['reloaded_max_abs_diff_features']:.3g}")
    print(f"backbone params: {result['params_backbone']:,} ({result['trainable_params_backbone']:,} trainable)")
    print(f"wrote {result['out']}")
    return 0
