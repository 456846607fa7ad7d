"""``python -m pipeline data summary|split|download``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline import paths
from pipeline.data import catalog, split
from pipeline.progress import printer


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data = sub.add_parser("data", help="dataset summary, split and download")
    dsub = data.add_subparsers(dest="data_command", required=True)
    for name, func, text in (
        ("summary", _summary, "counts per class, sizes, masks, duplicate groups, conflicts"),
        ("split", _split, "write the leakage-free split CSV"),
        ("download", _download, "download BUSI from Kaggle (needs internet)"),
    ):
        p = dsub.add_parser(name, help=text)
        p.add_argument("--data", help="dataset folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
        p.set_defaults(func=func)
        if name == "summary":
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
            p.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA; skipped if absent)")
        if name == "split":
            p.add_argument("--out", default=str(paths.SPLIT_CSV), help="CSV to write")
            p.add_argument("--seed", type=int, default=split.SEED)


def _index(args: argparse.Namespace):
    root = paths.dataset_dir(args.data)
    return catalog.grouped_index(root, printer("reading images"), printer("comparing thumbnails"))


def _summary(args: argparse.Namespace) -> int:
    index = _index(args)
    facts = catalog.summary(index)
    bra = _busbra_summary(args, index)
    if args.json:
        print(json.dumps({"busi": facts, "busbra": bra}, indent=2))
        return 0
    print("BUSI")
    print(f"images: {facts['images']}  mask files: {facts['mask_files']}  "
          f"multi-mask images: {facts['multi_mask_images']}  RGB images: {facts['rgb_images']}")
    for label, n in facts["per_class"].items():
        print(f"  {label:<10} {n}")
    print(f"height {facts['height']}  width {facts['width']}")
    print(f"duplicate groups (thumbnail correlation > {facts['duplicate_threshold']}): "
          f"{facts['duplicate_groups']} holding {facts['images_in_duplicate_groups']} images, "
          f"largest {facts['largest_group']}")
    print(f"cross-label groups: {facts['cross_label_groups']}")
    from pipeline.data.duplicates import conflicts

    for _, row in conflicts(index).iterrows():
        print(f"  {row['group']}  {row['label']:<10} {row['image']}")
    split_csv = paths.SPLIT_CSV
    if split_csv.is_file():
        print(f"split ({split_csv.relative_to(paths.PROJECT_ROOT)}):")
        print(split.proportions(split.read_split(split_csv)).round(3).to_string())
    if bra is None:
        print(f"\nBUS-BRA: not found at {paths.busbra_dir(args.busbra)} (set BUSBRA_DIR)")
        return 0
    print(f"\nBUS-BRA: {bra['images']} images of {bra['patients']} patients; "
          + ", ".join(f"{k} {v}" for k, v in bra["per_class"].items()))
    print("  scanners: " + ", ".join(f"{k} {v}" for k, v in bra["per_scanner"].items()))
    print("  BI-RADS: " + ", ".join(f"{k}: {v}" for k, v in bra["per_birads"].items()))
    for subset, s in bra["per_subset"].items():
        print(f"  {subset:<5} {s['images']} images, {s['patients']} patients: "
              + ", ".join(f"{k} {v}" for k, v in s["per_class"].items()))
    print(f"  patients in more than one subset: {bra['patients_in_several_subsets']} (folds are by patient)")
    cross = bra["cross_dataset"]
    print(f"cross-dataset near-duplicates BUSI x BUS-BRA (thumbnail correlation > {cross['threshold']}): "
          f"{cross['pairs']} pairs (highest correlation {cross['max_correlation']:.3f})")
    for a, b, c in cross["examples"]:
        print(f"  {c:.3f}  {a}  ~  {b}")
    return 0


def _busbra_summary(args: argparse.Namespace, busi_index) -> dict | None:
    """BUS-BRA counts and the BUSI x BUS-BRA near-duplicate check, or None when BUS-BRA is absent."""
    from pipeline.data import busbra, duplicates

    root = paths.busbra_dir(args.busbra)
    if not paths.busbra_available(root):
        return None
    index = busbra.read_index(root)
    facts = catalog.busbra_summary(index)
    pairs = duplicates.cross_matches(list(busi_index["path"]), list(index["path"]),
                                     progress=printer("BUS-BRA thumbnails"))
    facts["cross_dataset"] = {
        "threshold": duplicates.THRESHOLD, "pairs": int(len(pairs)), "max_correlation": pairs.attrs["max_correlation"],
        "examples": [(str(r.a), str(r.b), float(r.correlation)) for r in pairs.head(5).itertuples()],
    }
    return facts


def _split(args: argparse.Namespace) -> int:
    index = _index(args)
    result = split.make_split(index, seed=args.seed)
    out = split.write_split(result, Path(args.out))
    print(f"wrote {out}")
    print(split.proportions(result).round(3).to_string())
    return 0


def _download(args: argparse.Namespace) -> int:
    from pipeline.data.download import download_busi

    target = download_busi(Path(args.data) if args.data else paths.DEFAULT_DATASET_DIR)
    print(f"dataset ready at {target}")
    return 0
