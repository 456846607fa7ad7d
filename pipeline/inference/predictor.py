"""The one inference path: a ``Predictor`` that loads the models once and answers for images.

Pipeline per image: grayscale -> (its uniform black borders set aside, ``preprocess.content_box``) -> UNet
mask (at the image's own size) -> baseline classifier on the whole frame and crop classifier on the
lesion-centred crop of the predicted mask. The refined answer
fuses the crop classifier with the whole-frame one (weight chosen on the validation split; weight 1 is
the crop model alone). Flip test-time averaging and the softmax temperatures are also chosen on the
validation split and stored in the model configs.

Training (predicted masks for choosing the refined classifier's epochs), evaluation, the CLI, the
dashboard, the HTTP API and the benchmarks all call this class: there is no second copy of
segmentation, input preparation or fusion.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import paths, preprocess
from pipeline.config import CLASS_NAMES, ModelConfig, config_path, model_path
from pipeline.errors import ModelLoadError
from pipeline.inference.bundle import check_model, read_manifest, verify_file
from pipeline.inference.decisions import fuse, lesion_mask
from pipeline.metrics import apply_temperature
from pipeline.nets import POOLED_LAYER

RESTORE_HINT = (
    "The trained models ship with the project in models/: restore them with "
    "`git checkout -- models/` (or `git lfs pull` if your clone uses LFS), or retrain with "
    "`python -m pipeline train seg` and `python -m pipeline train cls --input raw|refined`."
)
ALL_MODELS = ("seg", "raw", "refined")
RESEARCH_ONLY_NOTE = ("the image was refused as out of scope (not a breast-ultrasound frame); this answer was "
                      "computed anyway for research only and is not meaningful")
BATCH = 16


@dataclass(frozen=True)
class Prediction:
    """Everything the app, the CLI and the API report for one image."""

    label: str
    probabilities: dict[str, float]
    baseline_label: str
    baseline_probabilities: dict[str, float]
    mask: np.ndarray  # uint8 0/1, same height and width as the input
    lesion_fraction: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    # scope gate (pipeline.inference.scope): None when models/scope_gate.* is absent
    in_scope: bool | None = None
    scope_score: float | None = None  # out-of-distribution score; <= 1 is accepted
    scope_reason: str | None = None  # why the image was judged out of scope (None when in scope)
    scope_warnings: tuple[str, ...] = ()  # content warnings from the gate (burned-in annotations)
    # x0, y0, x1, y1 of the part of the frame the networks saw when its black borders were set aside (None: all of it)
    analysed_region: tuple[int, int, int, int] | None = None

    @property
    def confidence(self) -> float:
        """Probability of the refined model's label."""
        return self.probabilities[self.label]

    @property
    def models_agree(self) -> bool:
        """True when baseline and refined models give the same label."""
        return self.label == self.baseline_label

    @property
    def refused(self) -> bool:
        """True when the scope gate judged the image out of scope: the labels are then for research only."""
        return self.in_scope is False

    def to_record(self) -> dict:
        """The one JSON-ready record of a prediction (CLI lines, the report's prediction, the HTTP API).

        ``status`` is "ok", or "refused" for an image the scope gate judged out of scope: ``label``,
        ``confidence``, ``probabilities`` and ``baseline`` are then null and the answer computed anyway is
        under ``research_only`` (with a ``note`` saying it is not meaningful), so a client reading ``label``
        never takes a refused image's label for an answer.
        """
        answer = {
            "label": self.label,
            "confidence": float(self.confidence),
            "probabilities": {c: float(v) for c, v in self.probabilities.items()},
            "baseline": {"label": self.baseline_label,
                         "probabilities": {c: float(v) for c, v in self.baseline_probabilities.items()}},
        }
        record = {"status": "refused" if self.refused else "ok",
                  **({k: None for k in answer} if self.refused else answer),
                  "models_agree": self.models_agree,
                  "lesion_fraction": float(self.lesion_fraction)}
        record["in_scope"] = self.in_scope
        record["scope_score"] = None if self.scope_score is None else round(float(self.scope_score), 4)
        if self.refused:
            record["scope_reason"] = self.scope_reason
            record["research_only"] = {**answer, "note": RESEARCH_ONLY_NOTE}
        if self.scope_warnings:
            record["scope_warnings"] = list(self.scope_warnings)
        if self.analysed_region is not None:
            record["analysed_region"] = [int(v) for v in self.analysed_region]
        return record

    @property
    def border_note(self) -> str | None:
        """A sentence for the user when black borders were set aside (None when the whole frame was analysed)."""
        if self.analysed_region is None:
            return None
        x0, y0, x1, y1 = self.analysed_region
        h, w = self.mask.shape
        return (f"black borders set aside: the models analysed the {x1 - x0}x{y1 - y0} px inside them (x {x0}-{x1}, "
                f"y {y0}-{y1} of the {w}x{h} frame).")


@dataclass(frozen=True)
class ClassifierOutputs:
    """Per-image class probabilities of a batch: baseline, crop model alone, and the refined (fused) answer."""

    baseline: np.ndarray
    crop: np.ndarray
    refined: np.ndarray


def load_keras_model(path: Path):
    """Load a ``.keras`` file in safe mode, or raise ModelLoadError with how to get it back."""
    import keras

    from pipeline.nets.losses import CUSTOM_OBJECTS

    if not path.is_file():
        raise ModelLoadError(f"model file missing: {path}. {RESTORE_HINT}")
    if not zipfile.is_zipfile(path):  # Keras itself says "File not found" for a truncated archive
        raise ModelLoadError(f"model file {path} is truncated or corrupt ({path.stat().st_size:,} bytes, not a complete "
                             f".keras zip archive). {RESTORE_HINT}")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True, custom_objects=CUSTOM_OBJECTS)
    except Exception as exc:
        raise ModelLoadError(f"model file {path} cannot be loaded ({type(exc).__name__}: {exc}). {RESTORE_HINT}") from exc


def _batches(seq: Sequence, n: int = BATCH):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _crop_settings(manifest: dict) -> tuple[float, float]:
    """The refined classifier's crop margin and minimum fraction, from the bundle manifest's preprocessing block."""
    try:
        block = manifest["preprocessing"]
        return float(block["crop_margin"]), float(block["crop_min_fraction"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"the bundle manifest has no valid preprocessing block ({exc!r}): {RESTORE_HINT}") from exc


class Predictor:
    """Loads the UNet and both classifiers once; every method is safe to call from several threads.

    ``models`` picks a subset (e.g. ``("seg",)`` for segmentation only, as training uses it).
    """

    # the baseline layer whose pooled features a refined classifier with a second input reads (None: a crop
    # classifier; set by pipeline.experiments.two_branch.TwoBranchPredictor)
    global_layer: str | None = None

    def __init__(self, models_dir: str | Path | None = None, models: Sequence[str] = ALL_MODELS,
                 runtime: str | None = None):
        from pipeline.inference.runtime import default_runtime

        self.models_dir = Path(models_dir) if models_dir else paths.models_dir()
        self.runtime = runtime or default_runtime()  # asked for; self.runtimes says what each graph runs on
        self.runtimes: dict[str, str] = {}
        self.manifest: dict = {}
        self.configs: dict[str, ModelConfig] = {}
        self._fns = {}
        self._sha: dict[str, str] = {}
        self._build_lock = threading.Lock()
        for name in models:  # what is missing, then every file against its manifest hash, before any is loaded
            for path, what in ((model_path(name, self.models_dir), "model file"),
                               (config_path(name, self.models_dir), "model config")):
                if not path.is_file():
                    raise ModelLoadError(f"{what} missing: {path}. {RESTORE_HINT}")
        self.manifest = read_manifest(self.models_dir)
        for name in models:
            self._sha[name] = verify_file(self.models_dir, self.manifest, model_path(name).name)
            verify_file(self.models_dir, self.manifest, config_path(name).name)
        for name in models:
            model = load_keras_model(model_path(name, self.models_dir))
            check_model(name, model, self.manifest)
            self.configs[name] = ModelConfig.load(config_path(name, self.models_dir))
            setattr(self, f"{name}_model", model)
        self.crop = _crop_settings(self.manifest)  # (margin, minimum fraction) of the refined classifier's crop
        if "refined" in self.configs:
            self._check_refined()
        self.scope = None  # the scope gate, when its files exist and the baseline classifier is loaded
        if "raw" in self.configs:
            self._load_scope_gate()
        first = self.configs.get("raw") or next(iter(self.configs.values()))
        self.classes: tuple[str, ...] = first.classes if "raw" in self.configs else CLASS_NAMES
        self._lock = threading.Lock()
        self._cam_lock = threading.Lock()

    def with_settings(self, settings: dict[str, dict]) -> Predictor:
        """A Predictor sharing this one's loaded models and graphs, whose configs are copies changed by
        ``settings`` (model name -> {config field: value}, e.g. ``{"seg": {"flip_tta": True}}``); this one is
        left as it is. ``notes`` given for a model are merged into its notes."""
        unknown = set(settings) - set(self.configs)
        if unknown:
            raise KeyError(f"no loaded model {sorted(unknown)}: loaded are {sorted(self.configs)}")
        view = copy.copy(self)
        view.configs = {}
        for name, cfg in self.configs.items():
            changes = dict(settings.get(name, {}))
            notes = {**cfg.notes, **changes.pop("notes", {})}
            view.configs[name] = dataclasses.replace(cfg, notes=copy.deepcopy(notes), **changes)
        return view

    def _check_refined(self) -> None:
        """A refined classifier with two inputs is the unshipped two-branch experiment: refused here."""
        if isinstance(self.refined_model.input_shape, list):
            raise ModelLoadError(f"{model_path('refined', self.models_dir).name} takes two inputs (the two-branch "
                                 "experiment): load it with pipeline.experiments.two_branch.TwoBranchPredictor")

    def _load_scope_gate(self) -> None:
        """Load models/scope_gate.* when present (predictions work without it, with ``in_scope=None``); files
        present or listed in the manifest must match their hashes."""
        from pipeline.inference.scope import GATE_JSON, GATE_NPZ, ScopeGate

        listed = {e["path"] for e in self.manifest.get("files", [])}
        for name in (GATE_NPZ, GATE_JSON):
            if name in listed or (self.models_dir / name).is_file():
                verify_file(self.models_dir, self.manifest, name)
        gate = ScopeGate.load(self.models_dir)
        if gate is not None:
            self._feature_fn(self._baseline_layers(gate.feature_layer))
            self.scope = gate

    def _scope_layer(self) -> str:
        from pipeline.inference.scope import FEATURE_LAYER

        return self.scope.feature_layer if self.scope else FEATURE_LAYER

    def _baseline_layers(self, scope_layer: str | None) -> tuple[str, ...]:
        """Baseline layers one classification pass reads: the two-branch network's global features, the gate's."""
        layers = (self.global_layer,) if self.global_layer else ()
        return layers + ((scope_layer,) if scope_layer else ())

    def _feature_fn(self, layers: tuple[str, ...], name: str = "raw"):
        """One graph giving classifier ``name``'s outputs at ``layers`` (feature maps averaged over space) and its
        probabilities (built once)."""
        key = f"{name}_features:{','.join(layers)}"
        return self._cached(key, lambda: self._feature_model_runner(key, layers, name))

    def _cached(self, key: str, build):
        """``self._fns[key]``, built by ``build()`` on first use (once, whatever the threads)."""
        if key not in self._fns:
            with self._build_lock:
                if key not in self._fns:
                    self._fns[key] = build()
        return self._fns[key]

    def _feature_model_runner(self, key: str, layers: tuple[str, ...], name: str):
        """Runner of classifier ``name`` giving its outputs at ``layers`` (maps averaged over space) + probabilities."""
        import keras

        model = getattr(self, f"{name}_model")
        pooled = []
        for layer in layers:
            try:
                out = model.get_layer(layer).output
            except ValueError as exc:
                raise ModelLoadError(f"layer {layer!r} is not in the {name} classifier; refit the scope gate with "
                                     "`python -m pipeline scope fit`") from exc
            if len(out.shape) == 4:  # a feature map: averaged over space
                out = keras.layers.GlobalAveragePooling2D(name=f"{layer}_mean")(out)
            pooled.append(out)
        multi = keras.Model(model.inputs, [*pooled, model.outputs[0]], name=f"{name}_features")
        return self._runner(key, multi, name, f"layers:{','.join(layers)}")

    def _runner(self, key: str, model, name: str, spec: str):
        """A runner for ``model`` on this Predictor's runtime (converted once, cached); records the runtime used."""
        from pipeline.inference.runtime import make_runner

        runner, used = make_runner(model, self.runtime, self._sha[name], spec, label=key.split(":")[0])
        self.runtimes[key] = used
        return runner

    def _fn(self, name: str):
        """The runner of model ``name`` as saved (built on first use)."""
        return self._cached(name, lambda: self._runner(name, getattr(self, f"{name}_model"), name, "model"))

    # --- network calls --------------------------------------------------------------------------
    def _run(self, name: str, batch: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        fn = self._fn(name)
        with self._lock:  # one graph call at a time: identical results whatever the callers
            return fn(batch if extra is None else [batch, extra])[0]

    def _run_tta(self, name: str, batch: np.ndarray, spatial: bool, extra: np.ndarray | None = None) -> np.ndarray:
        """Outputs for ``batch``, averaged with the horizontal mirror (one call) when the config says so.
        ``extra``: the two-branch network's global features (the same for an image and its mirror)."""
        if not self.configs[name].flip_tta:
            return self._run(name, batch, extra)
        out = self._run(name, np.concatenate([batch, batch[:, :, ::-1]]),
                        None if extra is None else np.concatenate([extra, extra]))
        plain, flipped = out[: len(batch)], out[len(batch):]
        return (plain + (flipped[:, :, ::-1] if spatial else flipped)) / 2

    # --- segmentation ---------------------------------------------------------------------------
    def segment_probabilities(self, grays: Sequence[np.ndarray],
                              boxes: Sequence[preprocess.Box] | None = None) -> list[np.ndarray]:
        """Lesion probability maps resized to each image's own size (flip-averaged if configured; 0 on the frame's
        black borders, which the UNet does not see; ``boxes``: each frame's ``preprocess.content_box``, if known)."""
        size, out = self.configs["seg"].image_size, []
        boxes = _content_boxes(grays, boxes)
        for start in range(0, len(grays), BATCH):
            chunk, chunk_boxes = grays[start:start + BATCH], boxes[start:start + BATCH]
            inner = [preprocess.crop_to_box(g, b) for g, b in zip(chunk, chunk_boxes)]
            probs = self._run_tta("seg", np.stack([preprocess.seg_input(g, size) for g in inner]), spatial=True)
            out += [preprocess.place_in_box(preprocess.resize_probability(p, g.shape), b, full.shape)
                    for p, g, b, full in zip(probs, inner, chunk_boxes, chunk)]
        return out

    def segment_batch(self, grays: Sequence[np.ndarray],
                      boxes: Sequence[preprocess.Box] | None = None) -> list[np.ndarray]:
        """Predicted 0/1 masks at each image's own size (empty where the presence gate finds no lesion)."""
        cfg = self.configs["seg"]
        return [lesion_mask(p, cfg.threshold, cfg.presence_threshold)
                for p in self.segment_probabilities(grays, boxes)]

    def _run_features(self, batch: np.ndarray, layers: tuple[str, ...], name: str = "raw",
                      extra: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """([features per layer], probabilities) of classifier ``name`` in one call, flip-averaged like its answer."""
        fn = self._feature_fn(layers, name)
        tta = self.configs[name].flip_tta
        x = np.concatenate([batch, batch[:, :, ::-1]]) if tta else batch
        if extra is not None:
            x = [x, np.concatenate([extra, extra]) if tta else extra]
        with self._lock:
            outs = fn(x)
        if tta:
            n = len(batch)
            outs = [(o[:n] + o[n:]) / 2 for o in outs]
        return outs[:-1], outs[-1]

    def _baseline_outputs(self, grays: Sequence[np.ndarray], layers: tuple[str, ...],
                          boxes: Sequence[preprocess.Box] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """([pooled features per layer], untempered probabilities) of the baseline, one pass per batch."""
        size, feats, probs = self.configs["raw"].image_size, [], []
        for chunk in _batches(list(zip(grays, _content_boxes(grays, boxes)))):
            f, p = self._run_features(np.stack([_baseline_input(g, b, size) for g, b in chunk]), layers)
            feats.append(f)
            probs.append(p)
        return [np.concatenate(per_layer) for per_layer in zip(*feats)], np.concatenate(probs)

    def baseline_features(self, grays: Sequence[np.ndarray], layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pooled encoder features (``layer``, default the gate's) and untempered baseline probabilities."""
        feats, probs = self._baseline_outputs(grays, (layer or self._scope_layer(),))
        return feats[0], probs

    def crop_features(self, grays: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                      layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features and untempered probabilities of the crop classifier (the two-branch network's local
        branch and fused answer) on the lesion-centred crops."""
        size, feats, probs = self.configs["refined"].image_size, [], []
        boxes = _content_boxes(grays)
        global_feats = self._global_features(grays, boxes)
        for i, chunk in enumerate(_batches(list(zip(grays, masks, boxes)))):
            extra = None if global_feats is None else global_feats[i * BATCH:(i + 1) * BATCH]
            f, p = self._run_features(np.stack([self._refined_input(g, m, b, size) for g, m, b in chunk]),
                                      (layer or POOLED_LAYER,), "refined", extra)
            feats.append(f[0])
            probs.append(p)
        return np.concatenate(feats), np.concatenate(probs)

    def _refined_input(self, gray: np.ndarray, mask: np.ndarray, box: preprocess.Box, size: int) -> np.ndarray:
        """The crop classifier's input: the lesion-centred crop of the frame without its black borders (``box``)."""
        return preprocess.refined_input(preprocess.crop_to_box(gray, box), preprocess.crop_to_box(mask, box), size,
                                        *self.crop)

    def _global_features(self, grays: Sequence[np.ndarray],
                         boxes: Sequence[preprocess.Box] | None = None) -> np.ndarray | None:
        """The baseline's pooled features the two-branch network fuses (None for the crop classifier)."""
        return self._baseline_outputs(grays, (self.global_layer,), boxes)[0][0] if self.global_layer else None

    # --- classification -------------------------------------------------------------------------
    def model_probabilities(self, name: str, inputs: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Untempered probabilities of classifier ``name`` ("raw" or "refined") for prepared inputs (``extra``: the
        two-branch network's global features, one row per input)."""
        return np.concatenate([
            self._run_tta(name, inputs[i:i + BATCH], spatial=False, extra=None if extra is None else extra[i:i + BATCH])
            for i in range(0, len(inputs), BATCH)])

    def combine(self, base: np.ndarray, crop: np.ndarray, temper: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(baseline, refined) probabilities from the two classifiers' untempered outputs."""
        refined = fuse(base, crop, self.configs["refined"].fusion_weight)
        if not temper:
            return base, refined
        return (apply_temperature(base, self.configs["raw"].temperature),
                apply_temperature(refined, self.configs["refined"].temperature))

    def classify_batch(self, grays: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                       temper: bool = True) -> ClassifierOutputs:
        """Baseline, crop and refined probabilities for grayscale images and their (predicted) masks."""
        return self._classify(grays, masks, temper)[0]

    def _classify(self, grays: Sequence[np.ndarray], masks: Sequence[np.ndarray], temper: bool = True,
                  features: bool = False, boxes: Sequence[preprocess.Box] | None = None
                  ) -> tuple[ClassifierOutputs, np.ndarray | None]:
        """``classify_batch``, plus the baseline's pooled features from the same network pass when asked."""
        raw_size, crop_size = self.configs["raw"].image_size, self.configs["refined"].image_size
        boxes = _content_boxes(grays, boxes)
        layers = self._baseline_layers(self._scope_layer() if features else None)
        feats = global_feats = None
        if layers:  # one baseline pass also gives the features the gate and the two-branch network read
            outs, base = self._baseline_outputs(grays, layers, boxes)
            global_feats = outs[0] if self.global_layer else None
            feats = outs[-1] if features else None
        else:
            base = self.model_probabilities("raw", np.stack([_baseline_input(g, b, raw_size) for g, b in zip(grays, boxes)]))
        crops = np.stack([self._refined_input(g, m, b, crop_size) for g, m, b in zip(grays, masks, boxes)])
        crop = self.model_probabilities("refined", crops, global_feats)
        baseline, refined = self.combine(base, crop, temper=temper)
        return ClassifierOutputs(baseline, crop, refined), feats

    # --- one image ------------------------------------------------------------------------------
    def predict(self, image: np.ndarray, rgb: np.ndarray | None = None) -> Prediction:
        """Segment and classify one image (grayscale, RGB or RGBA uint8 array).

        With the scope gate loaded, also says whether the image looks like a breast-ultrasound frame
        (``in_scope``); the label is computed either way. The gate sees colour when ``image`` is RGB(A)
        or when ``rgb`` (the colour version of a grayscale ``image``, e.g. ``LoadedImage.colour``) is given;
        ``rgb`` is used by the gate only.
        """
        t0 = time.perf_counter()
        arr = np.asarray(image)
        gray = preprocess.to_gray(arr)
        if gray.dtype != np.uint8:
            raise TypeError(f"expected a uint8 image, got {gray.dtype}")
        box = preprocess.content_box(gray)
        mask = self.segment_batch([gray], [box])[0]
        t1 = time.perf_counter()
        out, feats = self._classify([gray], [mask], features=self.scope is not None, boxes=[box])
        t2 = time.perf_counter()
        base, refined = out.baseline[0], out.refined[0]
        timings = {"segmentation": (t1 - t0) * 1e3, "classification": (t2 - t1) * 1e3}
        scope = None
        if self.scope is not None:
            colour = rgb if rgb is not None else (arr[:, :, :3] if arr.ndim == 3 and arr.shape[2] >= 3 else None)
            scope = self.scope.check(gray, feats[0], rgb=colour)
            timings["scope"] = (time.perf_counter() - t2) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3

        def as_dict(p: np.ndarray) -> dict[str, float]:
            return {c: float(v) for c, v in zip(self.classes, p)}

        return Prediction(
            label=self.classes[int(np.argmax(refined))], probabilities=as_dict(refined),
            baseline_label=self.classes[int(np.argmax(base))], baseline_probabilities=as_dict(base),
            mask=mask, lesion_fraction=float(mask.mean()), timings_ms=timings,
            in_scope=None if scope is None else scope.in_scope,
            scope_score=None if scope is None else scope.score,
            scope_reason=None if scope is None else scope.reason,
            scope_warnings=() if scope is None else scope.warnings,
            analysed_region=None if box == (0, 0, gray.shape[1], gray.shape[0]) else box,
        )

    def warm_up(self, explain: bool = False) -> None:
        """One prediction (and one Grad-CAM if ``explain``) on a synthetic frame, so the first user does not
        wait for graph tracing."""
        frame = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
        pred = self.predict(frame)
        if explain:
            mask = np.zeros_like(frame)
            mask[96:160, 96:160] = 1
            self.explain(frame, mask, pred.label)

    # --- explanation ----------------------------------------------------------------------------
    def explain(self, image: np.ndarray, mask: np.ndarray, label: str):
        """Grad-CAM of the refined classifier for class ``label`` on the lesion crop, mapped onto the frame."""
        from pipeline.inference.gradcam import GradCam, refined_gradcam

        gray = preprocess.to_gray(np.asarray(image))
        box = preprocess.content_box(gray)
        global_feats = self._global_features([gray], [box])  # the two-branch network: its global input, held fixed
        with self._cam_lock:  # Grad-CAM does not hold up predictions (they use self._lock)
            if getattr(self, "_gradcam", None) is None:
                self._gradcam = GradCam(self.refined_model)
            cam = refined_gradcam(self._gradcam, preprocess.crop_to_box(gray, box), preprocess.crop_to_box(mask, box),
                                  self.classes.index(label), self.configs["refined"].image_size, extra=global_feats,
                                  crop=self.crop)
        x0, y0 = box[:2]
        return dataclasses.replace(cam, heatmap=preprocess.place_in_box(cam.heatmap, box, gray.shape),
                                   box=(cam.box[0] + x0, cam.box[1] + y0, cam.box[2] + x0, cam.box[3] + y0))


def _content_boxes(grays: Sequence[np.ndarray], boxes: Sequence[preprocess.Box] | None = None) -> list[preprocess.Box]:
    """Each frame's ``preprocess.content_box`` (computed here unless the caller already has them)."""
    return list(boxes) if boxes is not None else [preprocess.content_box(g) for g in grays]


def _baseline_input(gray: np.ndarray, box: preprocess.Box, size: int) -> np.ndarray:
    """The whole-frame classifier's input: the frame without its black borders (``box``)."""
    return preprocess.cls_input(preprocess.crop_to_box(gray, box), size)


def image_record(predictor: Predictor, loaded, name: str) -> tuple[Prediction, dict]:
    """Predict one loaded image (``imageio.LoadedImage``; the gate sees its colour pixels, if any) and build the record
    the CLI and the HTTP API give for it: ``image``, ``Prediction.to_record()``, ``measurements`` (in mm when the
    file gives the pixel spacing) and the loader's ``warnings``."""
    from pipeline.inference.measure import measure

    pred = predictor.predict(loaded.pixels, rgb=loaded.colour)
    record = {"image": name, **pred.to_record(), "measurements": measure(pred.mask, loaded.pixel_spacing_mm).to_dict(),
              "warnings": list(loaded.warnings)}
    return pred, record


__all__ = ["CLASS_NAMES", "ClassifierOutputs", "Prediction", "Predictor", "image_record", "load_keras_model"]
