"""Train the IDC patch classifier (EfficientNet-Lite2 from ImageNet) on the pack's training patients.

One epoch = every training patch once, in shuffled batches, each patch augmented (dihedral view, stain and
colour jitter); class-balanced sample weights (IDC is 30% of patches). Batch-norm statistics stay at their
ImageNet values (as for the ultrasound classifiers). The learning rate follows a cosine from its peak to 0 over
the planned epochs. After every epoch the model is scored on the validation patients through
:class:`~pipeline.inference.idc.IdcPredictor` (no test-time averaging) and checkpointed; the epoch with the
best validation ROC-AUC is kept (ties: lower log-loss). ``resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.config import IDC_CONFIG_FILE, IDC_MODEL_FILE, IdcConfig, idc_dir_in
from pipeline.data.idc import IdcPack, load_idc
from pipeline.inference.bundle import write_idc_manifest
from pipeline.inference.idc import IdcPredictor
from pipeline.metrics import auc, log_loss, roc_curve
from pipeline.training.idc_augment import augment_patches

CHECKPOINTS = paths.MODELS_DIR / "checkpoints" / "idc"
IDC_BUNDLE_VERSION = "1.0.0"  # models/idc/manifest.json


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-patch weights n / (2 * count of its class)."""
    counts = np.bincount(labels, minlength=2).astype(float)
    return (len(labels) / (2 * np.maximum(counts, 1)))[labels]


def val_scores(predictor: IdcPredictor, pack: IdcPack) -> dict:
    """ROC-AUC and log-loss of the IDC probability on a subset (no test-time averaging, temperature 1)."""
    raw = predictor.raw_probabilities(pack.images, tta=False)
    fpr, tpr = roc_curve(pack.labels == 1, raw[:, 1])
    return {"auc": auc(fpr, tpr), "log_loss": log_loss(raw, pack.labels)}


def train_idc(root: str | Path | None = None, *, models_dir: str | Path | None = None, epochs: int = 12,
              batch_size: int = 32, learning_rate: float = 3e-4, network_size: int = 96, seed: int = 1234,
              resume: bool = False, steps: int | None = None, limit: int | None = None,
              work_dir: str | Path = CHECKPOINTS, log=print, run_eagerly: bool = False) -> Path:
    """Train, keep the best validation epoch, write ``<models_dir>/idc/idc_classifier.{keras,json}``.

    ``run_eagerly``: step by step without building the training graph (as ``train.train``: for smoke trainings)."""
    import keras

    from pipeline.nets.networks import build_idc_classifier

    pack = load_idc(root)
    train, val = pack.subset("train"), pack.subset("val")
    if limit:
        train, val = (IdcPack(*(a[:limit] for a in (p.images, p.labels, p.patients, p.xs, p.ys, p.subsets)))
                      for p in (train, val))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    state_file, last_file, best_file = work / "state.json", work / "last.keras", work / "best.keras"
    config = IdcConfig(network_size=network_size, seed=seed, epochs=epochs, batch_size=batch_size,
                       learning_rate=learning_rate)
    if resume and state_file.is_file() and last_file.is_file():
        state = json.loads(state_file.read_text())
        model = keras.saving.load_model(last_file, compile=False)
        config.initialisation = state["initialisation"]
        log(f"resuming after epoch {state['epoch']} (best {state['best_epoch']}: val AUC {state['best_auc']:.4f})")
    else:
        model, config.initialisation = build_idc_classifier(network_size)
        state = {"epoch": 0, "best_epoch": 0, "best_auc": -1.0, "best_log_loss": math.inf, "history": [],
                 "initialisation": config.initialisation}
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", weighted_metrics=[],
                  run_eagerly=run_eagerly)
    predictor = IdcPredictor(model=model, config=config)
    rng = np.random.default_rng(seed + state["epoch"])
    weights = balanced_weights(train.labels).astype(np.float32)
    n_steps = steps or math.ceil(len(train) / batch_size)
    for epoch in range(state["epoch"] + 1, epochs + 1):
        lr = learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
        optimizer.learning_rate.assign(lr)
        order = rng.permutation(len(train))
        start, losses = time.perf_counter(), []
        for step in range(n_steps):
            idx = order[(step * batch_size) % len(order):][:batch_size]
            x = augment_patches(train.images[idx], rng)
            losses.append(float(model.train_on_batch(x, train.labels[idx].astype(np.int32), sample_weight=weights[idx])))
            if (step + 1) % 20 == 0 or step + 1 == n_steps:
                print(f"  epoch {epoch} step {step + 1}/{n_steps} loss {np.mean(losses):.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
        scores = val_scores(predictor, val)
        model.save(last_file)
        better = (scores["auc"], -scores["log_loss"]) > (state["best_auc"], -state["best_log_loss"])
        if better:
            shutil.copyfile(last_file, best_file)
            state.update(best_epoch=epoch, best_auc=scores["auc"], best_log_loss=scores["log_loss"])
        state["history"].append({"epoch": epoch, "lr": lr, "train_loss": float(np.mean(losses)), **scores,
                                 "seconds": round(time.perf_counter() - start, 1)})
        state["epoch"] = epoch
        state_file.write_text(json.dumps(state, indent=2) + "\n")
        log(f"epoch {epoch}/{epochs}: train loss {np.mean(losses):.4f}, val AUC {scores['auc']:.4f}, "
            f"val log-loss {scores['log_loss']:.4f}{'  (best)' if better else ''}")
    out_dir = idc_dir_in(models_dir or paths.models_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.saving.load_model(best_file, compile=False).save(out_dir / IDC_MODEL_FILE)  # without optimizer state
    config.trained_epochs, config.best_epoch = state["epoch"], state["best_epoch"]
    config.notes = {"datasets": "IDC pack, 187 training patients (2,431 patches)", "history": state["history"],
                    "selection": "epoch with the best validation ROC-AUC (43 patients, 586 patches)"}
    config.save(out_dir / IDC_CONFIG_FILE)
    write_idc_manifest(out_dir, IDC_BUNDLE_VERSION)
    log(f"kept epoch {state['best_epoch']}: wrote {out_dir / IDC_MODEL_FILE}")
    return out_dir / IDC_MODEL_FILE


def compare_candidates(folders: list[str | Path], root: str | Path | None = None, out: str | Path | None = None) -> dict:
    """Validation ROC-AUC and log-loss (single view) of several candidate models; the test patients are not read."""
    val = load_idc(root).subset("val")
    rows = {}
    for folder in folders:
        predictor = IdcPredictor(folder)
        rows[str(folder)] = {**val_scores(predictor, val), "network_size": predictor.config.network_size,
                             "best_epoch": predictor.config.best_epoch, "seed": predictor.config.seed}
    result = {"subset": "val", "patients": int(len(np.unique(val.patients))), "patches": len(val),
              "candidates": rows, "best_by_auc": max(rows, key=lambda k: rows[k]["auc"])}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
