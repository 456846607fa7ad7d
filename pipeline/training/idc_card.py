"""The IDC model card (``models/idc/MODEL_CARD.md``), generated from ``models/idc/metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import IDC_METRICS_FILE

CARD_FILE = "MODEL_CARD.md"


def _row(name: str, r: dict, ci: dict | None = None) -> str:
    s = r["summary"]
    cells = []
    for k in ("balanced_accuracy", "f1_idc", "auc"):
        text = f"{s[k]:.3f}"
        if ci:
            text += f" ({ci[k][0]:.3f}-{ci[k][1]:.3f})"
        cells.append(text)
    p = r["patch"]
    return f"| {name} | " + " | ".join(cells) + f" | {p['recall_idc']:.3f} | {p['specificity']:.3f} | {r['ece']:.3f} |"


def write_idc_card(folder: str | Path) -> Path:
    """Write the card beside the metrics; returns its path."""
    folder = Path(folder)
    m = json.loads((folder / IDC_METRICS_FILE).read_text())
    c, t, v, b = m["choices"], m["test"], m["val"], m["bootstrap"]
    d = m["data"]
    net_pat = t["network"]["patient"]
    diff = b.get("network - features", {})
    lines = [
        "# Model card: IDC histopathology patch classifier",
        "",
        f"Generated from `models/idc/metrics.json` ({m['date']}) by `python -m pipeline idc evaluate`.",
        "",
        "## Intended use",
        "Research and teaching only: does a 50x50 px H&E patch (40x) show invasive ductal carcinoma? Not a medical "
        "device, not validated for clinical use, not for diagnosis.",
        "",
        "## Data",
        "The IDC pack (`IDC_DIR`): a lossless subset of the Breast Histopathology Images (Cruz-Roa et al. 2014; "
        "Janowczyk & Madabhushi 2016), 14-15 patches per patient folder, split by patient as given: "
        f"train {d['train']['patients']} patients / {d['train']['patches']} patches ({d['train']['idc']} IDC), "
        f"val {d['val']['patients']} / {d['val']['patches']} ({d['val']['idc']}), "
        f"test {d['test']['patients']} / {d['test']['patches']} ({d['test']['idc']}) — the 49 test patients of the "
        "original papers.",
        "",
        "## Model",
        f"EfficientNet-Lite2 ({m['model']['initialisation']}), patches up-sampled inside the network to "
        f"{m['model']['network_size']} px, 2-way softmax; epoch {m['model']['best_epoch']} of "
        f"{m['model']['trained_epochs']} kept (best validation AUC). File `models/idc/idc_classifier.keras`, settings "
        "`models/idc/idc_classifier.json`.",
        "",
        "## How the numbers were obtained",
        m["how"],
        "",
        *([f"This reading: {m['note']}.", ""] if m.get("note") else []),
        f"Chosen on validation: 8-view averaging {'on' if c['tta'] else 'off'} (val log-loss "
        f"{c['val_log_loss']['single view']:.3f} single view, {c['val_log_loss']['8 views']:.3f} with 8 views, "
        "which would cost 8 passes per patch), "
        f"temperature {c['temperature']:.3f}, patch threshold {c['threshold']:.2f}, patient rule "
        f"'{c['patient_rule']['kind']} >= {c['patient_rule']['cut']}'; feature model: {c['feature_model']} "
        f"(threshold {c['feature_threshold']:.2f}).",
        "",
        "## Results on the test patients (scored once)",
        "Patch level; in brackets a 95% interval from resampling the 49 patients.",
        "",
        "| model | balanced accuracy | IDC F1 | ROC-AUC | IDC recall | specificity | ECE |",
        "|---|---|---|---|---|---|---|",
        _row("network", t["network"], b.get("network")),
        _row(f"features ({c['feature_model']})", t["features"], b.get("features")),
        "",
    ]
    if diff:
        lines += [f"Network minus features (paired, same resamples): balanced accuracy "
                  f"{t['network']['summary']['balanced_accuracy'] - t['features']['summary']['balanced_accuracy']:+.3f} "
                  f"({diff['balanced_accuracy'][0]:+.3f} to {diff['balanced_accuracy'][1]:+.3f}), IDC F1 "
                  f"{t['network']['summary']['f1_idc'] - t['features']['summary']['f1_idc']:+.3f} "
                  f"({diff['f1_idc'][0]:+.3f} to {diff['f1_idc'][1]:+.3f}), AUC "
                  f"{t['network']['summary']['auc'] - t['features']['summary']['auc']:+.3f} "
                  f"({diff['auc'][0]:+.3f} to {diff['auc'][1]:+.3f}).", ""]
    lines += [
        f"Validation (for reference): network {v['network']['summary']}, features {v['features']['summary']}.",
        "",
        "### Per patient",
        f"A patient is called IDC when the rule above holds. Of the {net_pat['patients']} test patients only "
        f"{net_pat['idc_free_patients']} have no IDC patch in the pack, so patient-level accuracy says little: "
        f"balanced accuracy {net_pat['balanced_accuracy']:.3f}, {net_pat['called_idc']} called IDC. More useful is "
        f"the share of a patient's patches called IDC against the true share: mean absolute error "
        f"{net_pat['share_mae']:.3f}, Pearson r {net_pat['share_pearson_r']:.3f}.",
        "",
        "## Published figures (context, not a like-for-like comparison)",
        "They used all patches of the same 49 test patients; this pack holds 14-15 per patient.",
        "",
    ]
    for name, vals in m["published"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k.replace('_', ' ')} {x:.3f}" for k, x in vals.items()))
    if m.get("earlier_test_readings"):
        lines += ["", "## Earlier readings of the test patients",
                  "Every earlier scoring of the test patients is kept in metrics.json; a change made after one "
                  "is a choice informed by test and is named here.", ""]
        for r in m["earlier_test_readings"]:
            net = r["test"].get("network", {})
            lines.append(f"- {r['date']}: network " + ", ".join(f"{k.replace('_', ' ')} {x:.3f}" for k, x in net.items())
                         + (f" — {r['note']}" if r.get("note") else ""))
    lines += ["", "## Limits",
              "- 50 px patches at 40x only; other magnifications, stains or scanners are untested.",
              "- Patient folders are the grouping unit; whether some folders are further slides of one patient "
              "cannot be checked from the data.",
              "- A tile is answered patch by patch (no context across patches).", ""]
    out = folder / CARD_FILE
    out.write_text("\n".join(lines))
    return out
