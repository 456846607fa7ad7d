"""``python -m pipeline train|evaluate|predict``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import paths


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``evaluate`` and ``predict`` commands."""
    tr = sub.add_parser("train", help="train the UNet or a classifier")
    tsub = tr.add_subparsers(dest="model", required=True)
    seg = tsub.add_parser("seg", help="UNet lesion segmentation")
    seg.add_argument("--arch", choices=["lite2-unet", "unet16"], default="lite2-unet",
                     help="lite2-unet: ImageNet EfficientNet-Lite2 encoder; unet16: 4-level UNet from scratch")
    seg.add_argument("--weights", default="imagenet", help="encoder weights for lite2-unet: 'imagenet' or 'none'")
    cls = tsub.add_parser("cls", help="EfficientNet classifier")
    cls.add_argument("--input", choices=["raw", "refined"], required=True,
                     help="raw: the whole image (baseline); refined: the lesion-centred crop")
    cls.add_argument("--backbone", choices=["lite2", "b3"], default="lite2")
    cls.add_argument("--refined-arch", choices=["crop", "two-branch"], default="crop",
                     help="refined only. crop: a classifier on the lesion crop, averaged with the baseline; "
                          "two-branch: the baseline in --models-dir (frozen) + a crop branch, fused inside one network")
    cls.add_argument("--weights", default="imagenet", help="'imagenet', a weights file, or 'none'")
    for p, epochs in ((seg, 40), (cls, 15)):
        p.add_argument("--data", help="dataset folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
        p.add_argument("--epochs", type=int, default=epochs)
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--lr", type=float, default=None, help="peak learning rate")
        p.add_argument("--patience", type=int, default=8, help="early-stopping patience (epochs)")
        p.add_argument("--seed", type=int, default=1234)
        p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
        p.add_argument("--limit", type=int, help="use only this many images per subset (smoke tests)")
        p.add_argument("--steps", type=int, help="steps per epoch (smoke tests)")
        p.add_argument("--models-dir", default=str(paths.models_dir()))
        p.add_argument("--with-busbra", action="store_true",
                       help="also train on BUS-BRA folds 1-3 and validate on fold 4 (folder: --busbra, else $BUSBRA_DIR)")
        p.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
        p.add_argument("--init", help="start from this saved .keras model (warm start) instead of --weights")
        p.add_argument("--normal-repeat", type=int, default=1,
                       help="show each normal training image this many times per epoch (BUS-BRA has none)")
        p.add_argument("--display-aug", type=float, default=0.0, metavar="P",
                       help="show a training example under one of the scanner-shift display variations (tinted gray "
                            "map, pictogram, calipers, gain, padding, blur, JPEG...) with probability P")
        p.add_argument("--lesion-free", type=int, default=0, metavar="N",
                       help="add up to N regions of each training lesion frame, well away from the lesion, as "
                            "normal tissue")
        p.add_argument("--lesion-erased", action="store_true",
                       help="add each training lesion frame with its lesion erased (tissue of the same depths beside "
                            "it moved in) as a whole-frame normal-tissue example from its scanner")
        p.add_argument("--erased-source", choices=("all", "busi", "busbra"), default="all",
                       help="--lesion-erased: erase the lesion frames of both datasets (default), or of one only")
        p.add_argument("--band-swap", type=float, default=0.0, metavar="P",
                       help="with probability P, give a training frame of any class the seam --lesion-erased leaves "
                            "(a band of columns replaced by another, away from the lesion), so seams mean nothing")
        p.add_argument("--keep-class-prior", action="store_true",
                       help="classifiers: the normal-tissue examples added by --lesion-free / --lesion-erased share "
                            "the normal class's weight instead of adding to it (the learned class prior unchanged)")
        p.add_argument("--marks-aug", type=float, default=0.0, metavar="P",
                       help="draw caliper marks and text at random places on a training example with probability P "
                            "(whatever its class), so that marks stop meaning 'lesion'")
        p.set_defaults(func=_train)
    cls.add_argument("--image-size", type=int, default=None,
                     help="input side in pixels (default 224); a warm start from another size keeps its weights")
    cls.add_argument("--class-weight-power", type=float, default=1.0,
                     help="class weights (n / (k * count)) ** power: 1 balanced, 0.5 square root, 0 none")
    cls.add_argument("--zoom", type=float, default=0.0, metavar="P",
                     help="cut a training frame to a random part of it that holds the lesion with probability P "
                          "(frames of every class shown magnified, as lesion-free regions are)")
    cls.add_argument("--crop-masks", help="refined only: training crops follow these out-of-fold predicted masks "
                                          "(from 'train oof-masks') instead of jittered ground truth")
    oof = tsub.add_parser("oof-masks", help="out-of-fold predicted masks of the training images (a UNet per fold), "
                                            "for refined training crops that look like use")
    oof.add_argument("--data", help="BUSI folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
    oof.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    oof.add_argument("--epochs", type=int, default=1,
                     help="epochs per fold UNet, the last kept (1: about 16 minutes a fold on 2 CPU cores)")
    oof.add_argument("--normal-repeat", type=int, default=8)
    oof.add_argument("--fold", type=int, action="append",
                     help="redo only this fold (repeatable): its UNet continues to --epochs, its masks are made again")
    oof.add_argument("--work-dir", default=str(paths.MODELS_DIR / "checkpoints" / "oof_masks"),
                     help="each fold's split, UNet and masks (not committed); done folds are skipped")
    oof.add_argument("--out", help="merged masks (default: data/cache/oof_masks.npz)")
    oof.add_argument("--summary", help="per-fold scores JSON (default: models/experiments/oof_masks.json)")
    oof.add_argument("--models-dir", default=str(paths.models_dir()), help="the shipped UNet whose settings are used")
    oof.set_defaults(func=_oof_masks)

    ev = sub.add_parser("evaluate", help="score the models on val (choices) and test (record): models/metrics.json")
    ev.add_argument("--data", help="dataset folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
    ev.add_argument("--models-dir", default=str(paths.models_dir()))
    ev.add_argument("--out", help="metrics JSON to write (default: <models-dir>/metrics.json)")
    ev.add_argument("--no-choose", action="store_true", help="keep the saved threshold and temperatures")
    ev.add_argument("--busbra", help="BUS-BRA folder for the external check (default: $BUSBRA_DIR, else data/BUS-BRA)")
    ev.set_defaults(func=_evaluate)

    cv = sub.add_parser("crossval", help="5-fold duplicate-grouped cross-validation of the recipe on BUSI train + val")
    cv.add_argument("--data", help="BUSI folder (default: $BUSI_DIR, else data/Dataset_BUSI_with_GT)")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--fold", type=int, action="append", help="run only this fold (repeatable); done folds are skipped")
    cv.add_argument("--seg-epochs", type=int, default=7)
    cv.add_argument("--cls-epochs", type=int, default=8)
    cv.add_argument("--work-dir", default=str(paths.MODELS_DIR / "checkpoints" / "crossval"),
                    help="each fold's split and models (not committed)")
    cv.add_argument("--out", help="results JSON (default: models/experiments/crossval.json)")
    cv.set_defaults(func=_crossval)

    bu = sub.add_parser("bundle", help="the model bundle manifest (models/manifest.json)")
    bsub = bu.add_subparsers(dest="bundle_command", required=True)
    man = bsub.add_parser("manifest", help="write manifest.json: version, date, each model's input/output contract")
    man.add_argument("--version", help="bundle version (default: keep the current one, else the package version)")
    man.add_argument("--models-dir", default=str(paths.models_dir()))
    man.set_defaults(func=_manifest)
    ver = bsub.add_parser("verify", help="check every file of the model sets against its manifest SHA-256")
    ver.add_argument("--models-dir", default=str(paths.models_dir()))
    ver.set_defaults(func=_verify)

    ex = sub.add_parser("experiment", help="experiments whose results are recorded, not shipped")
    exsub = ex.add_subparsers(dest="experiment", required=True)
    fh = exsub.add_parser("feature-heads", help="baseline vs refined linear heads on frozen features, BUSI + BUS-BRA")
    fh.add_argument("--data", help="BUSI folder (default: $BUSI_DIR)")
    fh.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    fh.add_argument("--models-dir", default=str(paths.models_dir()))
    fh.add_argument("--out", help="results JSON (default: models/experiments/feature_heads.json)")
    fh.set_defaults(func=_feature_heads)

    rc = exsub.add_parser("refined-candidates",
                          help="refined classifiers of several model folders compared on validation only")
    rc.add_argument("models_dirs", nargs="+", metavar="MODELS_DIR", help="model folders (the first one's UNet masks)")
    rc.add_argument("--data", help="BUSI folder (default: $BUSI_DIR)")
    rc.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    rc.add_argument("--out", help="results JSON (default: models/experiments/refined_candidates.json)")
    rc.set_defaults(func=_refined_candidates)

    sc = exsub.add_parser("shift-candidates", help="whole model folders compared on validation, clean, under "
                                                   "other scanners' display variations and on lesion-free regions")
    sc.add_argument("models_dirs", nargs="+", metavar="MODELS_DIR",
                    help="model folders, each scored with its own UNet's masks")
    sc.add_argument("--data", help="BUSI folder (default: $BUSI_DIR)")
    sc.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    sc.add_argument("--per-image", type=int, default=2, help="display variations per validation image")
    sc.add_argument("--out", help="results JSON (default: models/experiments/shift_candidates.json)")
    sc.set_defaults(func=_shift_candidates)

    nb = exsub.add_parser("no-lesion-bias", help="the refined answer leaning to normal where the UNet finds no lesion, "
                                                 "scored on validation (clean, display variations, lesion-free regions)")
    nb.add_argument("--models-dir", default=str(paths.models_dir()))
    nb.add_argument("--data", help="BUSI folder (default: $BUSI_DIR)")
    nb.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    nb.add_argument("--per-image", type=int, default=2, help="display variations per validation image")
    nb.add_argument("--out", help="results JSON (default: models/experiments/no_lesion_bias.json)")
    nb.set_defaults(func=_no_lesion_bias)

    cm = exsub.add_parser("caliper-marks", help="do the networks lean on caliper marks? validation with calipers "
                                                "added, and with thin bright marks filled in")
    cm.add_argument("--models-dir", default=str(paths.models_dir()))
    cm.add_argument("--data", help="BUSI folder (default: $BUSI_DIR)")
    cm.add_argument("--busbra", help="BUS-BRA folder (default: $BUSBRA_DIR, else data/BUS-BRA)")
    cm.add_argument("--out", help="results JSON (default: models/experiments/caliper_marks.json)")
    cm.set_defaults(func=_caliper_marks)

    rt = bsub.add_parser("runtime", help="convert the models for the fast CPU runtime now (else on first use)")
    rt.add_argument("--models-dir", default=str(paths.models_dir()))
    rt.set_defaults(func=_runtime)

    pr = sub.add_parser("predict", help="segment and classify images; one JSON line per input")
    pr.add_argument("paths", nargs="+", metavar="PATH", help="PNG, JPEG, BMP, TIFF or DICOM files")
    pr.add_argument("--out", help="folder for the predicted masks (<stem>_mask.png); required for ultrasound. "
                                  "With --task idc (optional): the heat-map overlays (<stem>_idc.png)")
    pr.add_argument("--task", choices=("ultrasound", "idc"), default="ultrasound",
                    help="ultrasound (default): segment and classify frames; idc: IDC heat map of H&E tiles")
    pr.add_argument("--models-dir", default=str(paths.models_dir()))
    pr.set_defaults(func=_predict)


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.training.evaluate import evaluate

    evaluate(paths.dataset_dir(args.data), models_dir=args.models_dir, out=args.out, choose=not args.no_choose,
             busbra_root=paths.busbra_dir(args.busbra))
    return 0


def _feature_heads(args: argparse.Namespace) -> int:
    from pipeline.experiments.feature_heads import run

    run(paths.dataset_dir(args.data), _busbra_present(args), args.models_dir, out=args.out)
    return 0


def _crossval(args: argparse.Namespace) -> int:
    from pipeline.training.crossval import run

    run(paths.dataset_dir(args.data), args.work_dir, k=args.folds, only=args.fold, seg_epochs=args.seg_epochs,
        cls_epochs=args.cls_epochs, out=args.out)
    return 0


def _oof_masks(args: argparse.Namespace) -> int:
    from pipeline.errors import DatasetError
    from pipeline.training.oof_masks import run

    busbra = paths.busbra_dir(args.busbra)
    if not paths.busbra_available(busbra):
        raise DatasetError(f"BUS-BRA not found at {busbra}: set BUSBRA_DIR or pass --busbra")
    run(paths.dataset_dir(args.data), busbra, args.work_dir, epochs=args.epochs, normal_repeat=args.normal_repeat,
        out=args.out, summary=args.summary, shipped_dir=args.models_dir, only=args.fold)
    return 0


def _busbra_present(args: argparse.Namespace) -> Path:
    """The BUS-BRA folder of ``--busbra`` / BUSBRA_DIR; DatasetError when it is not there."""
    from pipeline.errors import DatasetError

    busbra = paths.busbra_dir(args.busbra)
    if not paths.busbra_available(busbra):
        raise DatasetError(f"BUS-BRA not found at {busbra}: set BUSBRA_DIR")
    return busbra


def _refined_candidates(args: argparse.Namespace) -> int:
    from pipeline.experiments.candidates import run

    print(f"wrote {run(args.models_dirs, paths.dataset_dir(args.data), _busbra_present(args), out=args.out)}")
    return 0


def _shift_candidates(args: argparse.Namespace) -> int:
    from pipeline.experiments.shift_candidates import run

    out = run(args.models_dirs, paths.dataset_dir(args.data), _busbra_present(args), out=args.out,
              per_image=args.per_image)
    print(f"wrote {out}")
    return 0


def _no_lesion_bias(args: argparse.Namespace) -> int:
    from pipeline.experiments.no_lesion_bias import run

    out = run(args.models_dir, paths.dataset_dir(args.data), _busbra_present(args), out=args.out,
              per_image=args.per_image)
    print(f"wrote {out}")
    return 0


def _caliper_marks(args: argparse.Namespace) -> int:
    from pipeline.experiments.caliper_marks import run

    print(f"wrote {run(args.models_dir, paths.dataset_dir(args.data), _busbra_present(args), out=args.out)}")
    return 0


def _runtime(args: argparse.Namespace) -> int:
    from pipeline.inference.predictor import Predictor
    from pipeline.inference.runtime import RUNTIME_CACHE

    predictor = Predictor(args.models_dir, runtime="tflite")
    predictor.warm_up()
    for key, used in sorted(predictor.runtimes.items()):
        print(f"{key}: {used}")
    print(f"converted models are cached in {RUNTIME_CACHE}")
    return 0


def _manifest(args: argparse.Namespace) -> int:
    import json

    import pipeline
    from pipeline.inference.bundle import MANIFEST_FILE, write_manifest

    current = Path(args.models_dir) / MANIFEST_FILE
    version = args.version or (json.loads(current.read_text()).get("version") if current.is_file() else None)
    print(f"wrote {write_manifest(args.models_dir, version or pipeline.__version__)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pipeline.errors import ModelLoadError
    from pipeline.inference.bundle import verify_sets

    results = verify_sets(args.models_dir)
    for name, problems in results.items():
        if not problems:
            print(f"{name}: every file matches the manifest")
    problems = [p for ps in results.values() for p in ps]
    if problems:
        raise ModelLoadError("; ".join(problems))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pipeline.cli.predict import run, run_idc
    from pipeline.errors import BusiError
    from pipeline.inference.predictor import Predictor

    if args.task == "idc":
        return run_idc(args.paths, args.out, models_dir=args.models_dir)
    if not args.out:
        raise BusiError("predict: --out DIR is required for ultrasound images (the predicted masks go there)")
    return run(args.paths, args.out, Predictor(args.models_dir))


def _refined_arch(choice: str):
    """"crop", or the two-branch experiment's training recipe."""
    if choice == "two-branch":
        from pipeline.experiments.two_branch import RECIPE

        return RECIPE
    return choice


def _train(args: argparse.Namespace) -> int:
    from pipeline.errors import DatasetError, ModelLoadError
    from pipeline.training.train import train

    busbra = None
    if args.with_busbra:
        busbra = paths.busbra_dir(args.busbra)
        if not paths.busbra_available(busbra):
            raise DatasetError(f"BUS-BRA not found at {busbra}: set BUSBRA_DIR or pass --busbra")
    if args.init and not Path(args.init).is_file():
        raise ModelLoadError(f"--init: no model file at {args.init}")
    name = "seg" if args.model == "seg" else args.input
    weights = getattr(args, "weights", None)
    train(name, paths.dataset_dir(args.data), epochs=args.epochs, batch_size=args.batch_size,
          learning_rate=args.lr, backbone=getattr(args, "backbone", "lite2"),
          weights=None if weights in (None, "none") else weights, patience=args.patience, seed=args.seed,
          resume=args.resume, limit=args.limit, models_dir=args.models_dir, steps_per_epoch=args.steps,
          arch=getattr(args, "arch", "lite2-unet"), busbra_root=busbra, init=args.init,
          class_weight_power=getattr(args, "class_weight_power", 1.0), normal_repeat=args.normal_repeat,
          refined_arch=_refined_arch(getattr(args, "refined_arch", "crop")), image_size=getattr(args, "image_size", None),
          crop_masks=getattr(args, "crop_masks", None), display_aug=args.display_aug, lesion_free=args.lesion_free,
          zoom=getattr(args, "zoom", 0.0), marks_aug=args.marks_aug,
          lesion_erased=args.lesion_erased, band_swap=args.band_swap, keep_class_prior=args.keep_class_prior,
          erased_source=args.erased_source)
    return 0
