"""Models page (presenters): baseline vs refined, from models/metrics.json only."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.common import disclaimer, wrapping_columns
from pipeline import paths
from pipeline.data.busi import load_sample
from pipeline.errors import BusiError
from pipeline.inference.overlay import overlay
from pipeline.views import results

COLOURS = {"benign": "#2e7d32", "malignant": "#c62828", "normal": "#1565c0"}
MODEL_COLOURS = {"baseline": "#9e9e9e", "refined": "#c2185b"}

st.title("How good are the models?")
disclaimer()

m, problem = state.get_metrics()
if m is None:
    st.warning(f"**No evaluation results to show.** {problem}")
    st.stop()

SHORT_LABELS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "macro_auc": "Macro AUC", "ece": "Calibration (ECE)",
                "malignant_vs_benign_auc": "Malignant-vs-benign AUC"}


METRIC_LABELS = {**SHORT_LABELS, "ece": "Calibration"}


@st.cache_data(show_spinner=False, max_entries=12)
def _optional(loader: str, path: str, mtime_ns: int) -> dict | None:
    return getattr(results, loader)(path)


def optional_results(loader: str, *parts: str) -> dict | None:
    """An optional results file under the models folder, read by ``results.<loader>``, cached until it changes."""
    path = paths.models_dir().joinpath(*parts)
    return _optional(loader, str(path), path.stat().st_mtime_ns if path.is_file() else 0)


def scope_metrics() -> dict | None:
    return optional_results("load_scope_metrics", "scope_metrics.json")


def crossval_results() -> dict | None:
    return optional_results("load_crossval", "experiments", "crossval.json")


def shift_results() -> dict | None:
    return optional_results("load_shift", "shift_metrics.json")


def fmt_score(key: str, value: float | None) -> str:
    """The page's one number format: accuracy in percent with one decimal (differences are read in points),
    the other scores on 0-1 with three decimals."""
    if value is None or value != value:
        return "—"
    return f"{value:.1%}" if key == "accuracy" else f"{value:.3f}"


def fmt_change(key: str, change: float) -> str:
    """A change in the same format: accuracy in points, the other scores on 0-1."""
    return f"{100 * change:+.1f} points" if key == "accuracy" else f"{change:+.3f}"


def percent_columns(df, columns):
    """``df`` with shares in ``columns`` as percentages and their column settings (one decimal)."""
    present = [c for c in columns if c in df.columns]
    return (df.assign(**{c: df[c].astype(float) * 100 for c in present}),
            {c: st.column_config.NumberColumn(c, format="%.1f%%") for c in present})


def table_height(n_rows: int, most: int = 10) -> int:
    """A dataframe height that fits ``n_rows`` rows (no empty padding rows), scrolling beyond ``most``."""
    return 38 + 35 * max(1, min(n_rows, most))


def scoreboard(numbers, comp: dict | None, key: str) -> None:
    """Presentation view: one row per score, baseline and refined side by side, then the difference in words."""
    head = wrapping_columns([2, 2, 2], f"{key}_head", 150, vertical_alignment="bottom")
    head[1].markdown(f"**{results.MODEL_TITLES['baseline']}**")
    head[2].markdown(f"**{results.MODEL_TITLES['refined']}**")
    for row in numbers.itertuples():
        c = wrapping_columns([2, 2, 2], f"{key}_{row.key}", 150, vertical_alignment="center")
        c[0].markdown(f"#### {SHORT_LABELS.get(row.key, row.metric)}")
        c[1].metric(f"{row.metric}, baseline", fmt_score(row.key, row.baseline), label_visibility="collapsed")
        c[2].metric(f"{row.metric}, refined", fmt_score(row.key, row.refined), label_visibility="collapsed")
    sentence = results.comparison_sentence(comp)
    if sentence == results.NOT_EVALUATED:
        st.info("Difference between the two models: not evaluated (re-run `python -m pipeline evaluate`).")
    else:
        st.info(f"**{sentence[0].upper() + sentence[1:]}.**", icon=":material/balance:")
        st.caption(results.discordant_sentence(comp))


presenting = st.toggle("Presentation view", key="presentation",
                       help="Only the headline numbers, large: baseline vs refined on the BUSI test split and on "
                            "the external BUS-BRA fold, and whether the difference is real. Turn off for the details.")
if presenting:
    st.subheader("BUSI test split")
    n_test = m["classifiers"]["refined"].get("test", {}).get("n")
    st.caption(f"{n_test} images never used for training or for any choice; near-duplicates kept out of it.")
    scoreboard(results.presentation_numbers(m, "test"), results.comparison(m, "test"), "score_test")
    if results.external(m) is not None:
        ext = results.external(m)
        st.subheader("External check: BUS-BRA held-out fold")
        st.caption(f"{ext.get('images', '?')} images of {ext.get('patients', '?')} patients ("
                   f"{results.external_provenance(m)}). BUS-BRA has no normal class: a 'normal' answer counts as "
                   "wrong, and the AUC is malignant vs benign.")
        scoreboard(results.presentation_numbers(m, "busbra"), results.external_comparison(m), "score_busbra")
    else:
        st.subheader("External check: BUS-BRA")
        st.info("Not evaluated: BUS-BRA was not available when the models were scored.")
    st.stop()

subset = st.radio("Scores on", ["test", "val"], horizontal=True, key="subset",
                  format_func=lambda s: {"test": "test split (the honest number)", "val": "validation split"}[s])

# --- headline -----------------------------------------------------------------------------------
st.subheader("Baseline vs refined")
fusion = m.get("choices", {}).get("fusion_weight", 1.0)
st.markdown("The **baseline** classifier looks at the whole image; the **refined** answer adds a classifier that "
            "looks at a square around the lesion outlined by the segmentation model"
            + (f" (the two are averaged, {fusion:.0%} lesion crop)" if fusion < 1 else "")
            + ". The big numbers are the refined model's; the small ones its change from the baseline.")
head = results.headline(m, subset)
cols = wrapping_columns(len(head) + 1, "headline", 150)
for col, row in zip(cols, head.itertuples()):
    if row.refined is None or row.refined != row.refined:
        col.metric(METRIC_LABELS.get(row.key, row.metric), "—", help=f"{row.metric}: not evaluated.")
        continue
    same = row.change is None or abs(row.change) < 0.0005  # no green/red arrow for "no change"
    # Short label and delta (five columns fit at 1024 px); the baseline value is in the help and the table below.
    col.metric(METRIC_LABELS.get(row.key, row.metric), fmt_score(row.key, row.refined),
               fmt_change(row.key, row.change) if not same else "= baseline",
               delta_color="off" if same else ("inverse" if row.key == "ece" else "normal"),
               delta_arrow="off" if same else "auto",
               help=f"{row.metric} of the refined model (baseline {fmt_score(row.key, row.baseline)}). "
                    + ("Lower is better." if row.key == "ece" else "Higher is better."))
seg = results.segmentation_summary(m, subset)
if seg.get("dice_mean") is not None:
    cols[-1].metric("Lesion Dice", f"{seg['dice_mean']:.3f}",
                    f"median {seg['dice_median']:.2f}", delta_color="off", delta_arrow="off",
                    help="Segmentation: mean Dice overlap of the predicted and hand-drawn lesion masks on the "
                         "lesion images (1 = perfect); the median is below.")
comp = results.comparison(m, subset)
if comp is None:
    st.markdown("**Is the accuracy difference real?** Not evaluated (this metrics file has no paired comparison; "
                "re-run `python -m pipeline evaluate`).")
else:
    st.markdown(f"**Is the accuracy difference real?** {results.comparison_sentence(comp)}.")
    st.caption(results.discordant_sentence(comp))
st.dataframe(head.assign(baseline=[fmt_score(k, v) for k, v in zip(head["key"], head["baseline"])],
                         refined=[fmt_score(k, v) for k, v in zip(head["key"], head["refined"])],
                         change=[fmt_change(k, v) if v == v and v is not None else "—"
                                 for k, v in zip(head["key"], head["change"])])
             .drop(columns=["key"]).set_index("metric"), width="stretch")

with st.expander("How these numbers were obtained", expanded=True):
    for line in results.provenance(m):
        st.markdown(f"- {line}")
    if seg:
        st.markdown(f"- Segmentation on {seg.get('lesion_images')} lesion images: mean Dice "
                    f"{seg.get('dice_mean', 0):.3f}, mean IoU {seg.get('iou_mean', 0):.3f}; on "
                    f"{seg.get('normal_images')} normal images the model outlined something in "
                    f"{seg.get('normal_false_positive_rate', 0):.0%} of them.")

# --- paired comparison on every evaluation view ----------------------------------------------------
st.subheader("Refined vs baseline on the same images")
st.caption("Difference of accuracy (refined − baseline) in percentage points, with its 95% bootstrap interval and "
           "the exact McNemar test on the images where only one model was right. An interval that contains 0 and "
           "p ≥ 0.05 mean the data cannot tell the two models apart.")
cv = crossval_results()
comp_table, comp_cols = percent_columns(results.comparison_table(m, cv), ["baseline accuracy", "refined accuracy"])
st.dataframe(comp_table, hide_index=True, width="stretch", column_config=comp_cols)
st.caption(results.crossval_sentence(cv))

# --- per-class tables ---------------------------------------------------------------------------
st.subheader("Per-class precision, recall and F1")
st.caption("Precision: of the images the model called X, the share that really are X. Recall (sensitivity): "
           "of the real X images, the share the model found. F1 combines both. Support: number of images.")
a, b = wrapping_columns(2, "per_class", 300)
for col, model in ((a, "baseline"), (b, "refined")):
    col.markdown(f"**{results.MODEL_TITLES[model]}**")
    table = results.per_class_table(m, model, subset)
    shown = table.apply(lambda c: c if c.name == "support" else c.map(lambda v: "" if v != v else f"{v:.3f}"))
    if "accuracy" in table.index:  # accuracy in the page's one format
        shown.loc["accuracy", "f1-score"] = fmt_score("accuracy", table.loc["accuracy", "f1-score"])
    col.dataframe(shown, width="stretch",
                  column_config={c: st.column_config.TextColumn(c) for c in ("precision", "recall", "f1-score")})

# --- confusion matrices -----------------------------------------------------------------------
st.subheader("Confusion matrices")
st.caption("Rows: true class; columns: what the model said. The diagonal holds the correct answers.")
a, b = wrapping_columns(2, "confusion", 300)
for col, model in ((a, "baseline"), (b, "refined")):
    cm = results.confusion(m, model, subset)
    fig = px.imshow(cm.values, x=list(cm.columns), y=list(cm.index), text_auto=True, color_continuous_scale="RdPu",
                    labels=dict(x="predicted", y="true", color="images"), title=results.MODEL_TITLES[model])
    fig.update_layout(height=360, coloraxis_showscale=False)
    col.plotly_chart(fig, width="stretch", key=f"cm_{model}")

# --- ROC and reliability -----------------------------------------------------------------------
st.subheader("ROC curves and calibration")
st.caption("One panel per class (that class against the other two); solid: refined, dotted: baseline; the dashed "
           "diagonal is chance.")
BELOW = dict(orientation="h", y=-0.3, yanchor="top", x=0, xanchor="left", title=None)  # legends under the plot
roc_cols = wrapping_columns(len(results.classes(m)), "roc", 300)
curves = {model: results.roc_points(m, model, subset) for model in ("baseline", "refined")}
for col, cls in zip(roc_cols, results.classes(m)):
    roc = go.Figure()
    for model, dash in (("baseline", "dot"), ("refined", "solid")):
        if cls in curves[model]:
            fpr, tpr, auc = curves[model][cls]
            roc.add_scatter(x=fpr, y=tpr, mode="lines", name=f"{model} (AUC {auc:.3f})",
                            line=dict(color=MODEL_COLOURS[model], dash=dash, width=2.5))
    roc.add_scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False, hoverinfo="skip",
                    line=dict(color="#bbbbbb", dash="dash", width=1))
    roc.update_layout(title=dict(text=f"ROC: {cls}", x=0, xanchor="left"), height=360, legend=BELOW,
                      margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(title="false-positive rate", range=[0, 1], constrain="domain"),
                      yaxis=dict(title="sensitivity", range=[0, 1.02], scaleanchor="x", constrain="domain"))
    col.plotly_chart(roc, width="stretch", key=f"roc_{cls}")

a, b = wrapping_columns([3, 2], "calibration", 300)
rel = go.Figure()
rel.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line=dict(color="#bbbbbb", dash="dash"))
for model in results.MODELS:
    bins = results.reliability(m, model, subset)
    if not bins.empty:
        rel.add_scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", name=model, cliponaxis=False,
                        marker=dict(size=6 + 18 * bins["count"] / bins["count"].max()),
                        line=dict(color=MODEL_COLOURS[model]), text=bins["count"],
                        hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{text} images")
rel.update_layout(title=dict(text="Reliability: is an 80% answer right 80% of the time?", x=0, xanchor="left"),
                  height=420, legend=BELOW, margin=dict(l=10, r=20, t=40, b=10),
                  xaxis=dict(title="mean confidence", range=[-0.03, 1.05]),
                  yaxis=dict(title="accuracy", range=[-0.03, 1.07]))
a.plotly_chart(rel, width="stretch", key="reliability")
b.markdown(f"**Calibration error (ECE)**: baseline {m['classifiers']['baseline'][subset]['ece']:.3f}, refined "
           f"{m['classifiers']['refined'][subset]['ece']:.3f} (lower is better).")
b.caption("Each marker is a bin of answers with about the same confidence; its size is the number of images "
          "in the bin. Markers on the diagonal mean the stated confidence can be taken at its word.")

# --- Dice distribution ---------------------------------------------------------------------------
dices = results.dice_values(m, subset)
if not dices.empty:
    st.subheader("Segmentation quality per image")
    fig = px.histogram(dices, x="dice", color="label", color_discrete_map=COLOURS, nbins=20, range_x=[0, 1],
                       barmode="overlay", opacity=0.7, title="Dice of the predicted mask, lesion images",
                       labels={"dice": "Dice (1 = perfect overlap)"})
    fig.update_layout(height=340, legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right",
                                              title=None), title=dict(x=0, xanchor="left"))
    st.plotly_chart(fig, width="stretch", key="dice_hist")

# --- external check: BUS-BRA --------------------------------------------------------------------------
st.subheader("External check: BUS-BRA held-out fold")
ext = results.external(m)
if ext is None:
    st.info("Not evaluated: BUS-BRA was not available when the models were scored (`python -m pipeline evaluate` "
            "adds this check when the BUS-BRA dataset is on disk).")
else:
    for line in results.external_summary(m):
        st.markdown(f"- {line}")
    numbers = results.presentation_numbers(m, "busbra")
    cols = wrapping_columns(len(numbers), "external", 150)
    for col, row in zip(cols, numbers.itertuples()):
        change = None if row.baseline is None or row.refined is None else row.refined - row.baseline
        same = change is None or abs(change) < 0.0005
        base = fmt_score(row.key, row.baseline)
        col.metric(SHORT_LABELS.get(row.key, row.metric), fmt_score(row.key, row.refined),
                   None if change is None else (f"same as baseline {base}" if same
                                                else f"{fmt_change(row.key, change)} vs baseline {base}"),
                   delta_color="off" if same else "normal", delta_arrow="off" if same else "auto",
                   help=f"{row.metric} of the refined model on BUS-BRA.")
    st.markdown(f"**Is the accuracy difference real?** {results.comparison_sentence(results.external_comparison(m))}.")
    scanners = results.external_per_scanner(m)
    if not scanners.empty:
        st.markdown("**Accuracy per scanner**")
        shown_scanners, _ = percent_columns(scanners, ["baseline", "refined"])
        st.dataframe(shown_scanners, width="stretch",
                     column_config={"baseline": st.column_config.NumberColumn("baseline accuracy", format="%.1f%%"),
                                    "refined": st.column_config.NumberColumn("refined accuracy", format="%.1f%%")})

# --- scope gate ----------------------------------------------------------------------------------------
st.subheader("Scope gate: refusing pictures that are not breast ultrasound")
scope = scope_metrics()
if scope is None:
    st.info("Not evaluated: `models/scope_metrics.json` is missing (run `python -m pipeline scope`).")
else:
    summary = results.scope_summary(scope)
    cols = wrapping_columns(3, "scope", 150)
    for i, (col, row) in enumerate(zip(cols, summary.head(3).itertuples())):
        col.metric(row.what, "not evaluated" if row.share is None else f"{row.share:.1%}",
                   None if row.share is None else f"{row.count} of {row.images}", delta_color="off",
                   delta_arrow="off")
        if i == 0 and row.share is not None:  # the README's caveat, beside the figure it qualifies
            col.caption(":material/info: Optimistic: the gate's feature layer was chosen with most of these pictures "
                        "in view, and the other modalities are mostly drawings, so new kinds of pictures may pass it.")
    a, b = wrapping_columns(2, "scope_tables", 300)
    per_scanner = summary.iloc[3:]
    if not per_scanner.empty:
        a.markdown("**BUS-BRA test images accepted, per scanner**")
        scanner_table, _ = percent_columns(per_scanner, ["share"])
        a.dataframe(scanner_table.assign(what=per_scanner["what"].str.removeprefix("BUS-BRA test, ")
                                         .str.removesuffix(": accepted"))
                    .rename(columns={"what": "scanner", "count": "accepted"})[["scanner", "images", "accepted", "share"]],
                    hide_index=True, width="stretch",
                    column_config={"share": st.column_config.NumberColumn("share accepted", format="%.1f%%")})
    sources = results.scope_sources(scope)
    if not sources.empty:
        b.markdown(f"**Non-ultrasound pictures refused, per {sources.columns[0]}**")
        source_table, source_cols = percent_columns(sources, ["share refused"])
        b.dataframe(source_table, hide_index=True, width="stretch", column_config=source_cols)
    shifted = results.scope_shifted(scope)
    if not shifted.empty:
        a.markdown("**Ultrasound frames under display variations accepted** (tinted gray maps, pictograms, "
                   "calipers, gain, padding, blur, JPEG…; the threshold was set on their validation views), and "
                   "**lesion-free regions** of lesion frames (normal tissue, magnified as a shallower depth shows it)")
        shifted_table, shifted_cols = percent_columns(shifted, ["share accepted"])
        a.dataframe(shifted_table, hide_index=True, width="stretch", column_config=shifted_cols)
    extra = []
    if scope.get("threshold") is not None:
        target = scope.get("accept_target_on_validation")
        extra.append(f"distance threshold {scope['threshold']:.3g}"
                     + (f", set so that {target:.0%} of validation ultrasound images pass" if target else ""))
    if scope.get("gate_check_ms_median") is not None:
        extra.append(f"the check takes {scope['gate_check_ms_median']:.2g} ms per image (median)")
    st.caption("A refused image gets no label on the Diagnose page (the user can still ask for one, flagged as "
               "out of scope)" + ("; " + "; ".join(extra) if extra else "") + ".")

# --- scanner-shift benchmark ----------------------------------------------------------------------
st.subheader("Scanner shift: the same test images as other scanners would show them")
shift = shift_results()
if shift is None:
    st.info("Not measured: `models/shift_metrics.json` is missing (run `python -m pipeline shift`).")
else:
    names = list(shift["datasets"])
    choice = st.radio("Test set", names, horizontal=True, key="shift_dataset") if len(names) > 1 else names[0]
    table = results.shift_table(shift, choice)
    shares = [c for c in table.columns if c not in ("variation", "strength", "images")]
    shown, cols = percent_columns(table, shares)
    st.dataframe(shown, hide_index=True, width="stretch", column_config=cols, height=table_height(len(table), 14))
    st.caption("Each test image clean and under each display variation at two strengths (fixed seed per image), "
               "sent through the upload path, and, in the row **lesion_free_regions**, regions of its lesion frames "
               "well away from the lesion as frames of their own (normal tissue as that dataset's scanners show it; "
               "there, accuracy is the share called normal and \"normal frames outlined\" the share given a lesion); "
               "nothing was chosen on these results. What each variation does: "
               + "; ".join(f"**{k}** — {v.rstrip('.')}" for k, v in shift.get("variations", {}).items()) + ". "
               + str(shift.get("how", "")))

# --- error browser --------------------------------------------------------------------------------
st.subheader("Where the models disagree or are wrong")
table = results.per_image(m, subset)
if table.empty:
    st.info("metrics.json holds no per-image results.")
    st.stop()
which = st.selectbox(f"Show {'test' if subset == 'test' else 'validation'} images where", results.CASE_FILTERS, key="case_filter")
picked = results.cases(table, which)
st.caption(f"{len(picked)} of {len(table)} images.")
if picked.empty:
    st.success("None.")
    st.stop()
show_cols = ["image", "label", "refined", "refined_confidence", "baseline", "baseline_confidence", "dice"]
case_table, case_cols = percent_columns(picked[show_cols], ["refined_confidence", "baseline_confidence"])
st.dataframe(case_table.assign(image=picked["image"].str.rsplit("/", n=1).str[-1]), hide_index=True, width="stretch",
             height=table_height(len(picked)),
             column_config={"image": "image", "label": "true class", "refined": "refined answer",
                            "refined_confidence": st.column_config.NumberColumn("refined confidence", format="%.1f%%"),
                            "baseline": "baseline answer",
                            "baseline_confidence": st.column_config.NumberColumn("baseline confidence", format="%.1f%%"),
                            "dice": st.column_config.NumberColumn("lesion Dice", format="%.3f")})
image = st.selectbox("Look at", list(picked["image"]), key="case_image")
row = picked[picked["image"] == image].iloc[0]
a, b = wrapping_columns([2, 3], "case", 300)
root = state.dataset_root()
with a:
    if root is None:
        st.info("The dataset is not available here, so the image cannot be shown (set `BUSI_DIR` or run `make data`).")
    else:
        try:
            gray, mask = load_sample(root, image)
            predictor, progress, model_error = state.model_progress()
            predicted = None
            if predictor is not None:  # the predicted mask: one prediction through the app's model worker
                predicted = state.analyse_dataset(predictor, image, row["label"]).prediction.mask
            st.image(overlay(gray, predicted, mode="contour", truth=mask), width="stretch",
                     caption=f"{image} — true class {row['label']}; cyan: ground-truth outline"
                             + ("; pink: predicted outline" if predicted is not None else ""))
            if predicted is None:
                st.caption(f"The predicted outline appears once the models are loaded ({model_error})." if model_error
                           else "The predicted outline appears once the models are loaded (they load in the "
                                "background; reopen this image in a few seconds).")
        except BusiError as exc:
            st.warning(str(exc))
with b:
    classes = results.classes(m)
    fig = go.Figure()
    for model in results.MODELS:
        fig.add_bar(name=results.MODEL_TITLES[model], x=classes, y=[row[f"{model}:{c}"] for c in classes],
                    marker_color=MODEL_COLOURS[model], text=[f"{row[f'{model}:{c}']:.0%}" for c in classes],
                    textposition="outside", cliponaxis=False)
    fig.update_layout(barmode="group", height=340, yaxis=dict(range=[0, 1.15], tickformat=".0%"),
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(automargin=True),
                      title=dict(text=f"Probabilities (true class: {row['label']})", x=0, xanchor="left"),
                      legend=dict(orientation="h", y=-0.15, yanchor="top", x=0, xanchor="left"))
    st.plotly_chart(fig, width="stretch", key="case_probs")

    def ok(right: bool) -> str:
        return ":green[right]" if right else ":red[wrong]"

    dice = "" if row["dice"] is None or row["dice"] != row["dice"] else f" Segmentation Dice {row['dice']:.3f}."
    st.markdown(f"Refined: **{row['refined']}** ({ok(row['refined_correct'])}); baseline: **{row['baseline']}** "
                f"({ok(row['baseline_correct'])}).{dice}")
