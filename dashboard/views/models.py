"""Models page (presenters): baseline vs refined, from models/metrics.json only."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.common import disclaimer
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

subset = st.radio("Scores on", ["test", "val"], horizontal=True, key="subset",
                  format_func=lambda s: {"test": "test split (the honest number)", "val": "validation split"}[s])

# --- headline -----------------------------------------------------------------------------------
st.subheader("Baseline vs refined")
fusion = m.get("choices", {}).get("fusion_weight", 1.0)
st.markdown("The **baseline** classifier looks at the whole image; the **refined** answer adds a classifier that "
            "looks at a square around the lesion outlined by the segmentation model"
            + (f" (the two are averaged, {fusion:.0%} lesion crop)" if fusion < 1 else "")
            + ". The arrows show the change from baseline to refined.")
head = results.headline(m, subset)
cols = st.columns(len(head) + 1)
for col, row in zip(cols, head.itertuples()):
    delta_colour = "inverse" if row.key == "ece" else "normal"
    col.metric(row.metric, f"{row.refined:.3f}", f"{row.change:+.3f} vs baseline {row.baseline:.3f}",
               delta_color=delta_colour, help="Lower is better." if row.key == "ece" else "Higher is better.")
seg = results.segmentation_summary(m, subset)
if seg.get("dice_mean") is not None:
    cols[-1].metric("Segmentation Dice (mean)", f"{seg['dice_mean']:.3f}",
                    f"median {seg['dice_median']:.3f}", delta_color="off",
                    delta_arrow="off", help="Overlap of predicted and hand-drawn lesion masks (1 = perfect).")
st.dataframe(head.drop(columns=["key"]).set_index("metric"), width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("baseline", "refined", "change")})

with st.expander("How these numbers were obtained", expanded=True):
    for line in results.provenance(m):
        st.markdown(f"- {line}")
    if seg:
        st.markdown(f"- Segmentation on {seg.get('lesion_images')} lesion images: mean Dice "
                    f"{seg.get('dice_mean', 0):.3f}, mean IoU {seg.get('iou_mean', 0):.3f}; on "
                    f"{seg.get('normal_images')} normal images the model outlined something in "
                    f"{seg.get('normal_false_positive_rate', 0):.0%} of them.")

# --- per-class tables ---------------------------------------------------------------------------
st.subheader("Per-class precision, recall and F1")
st.caption("Precision: of the images the model called X, the share that really are X. Recall (sensitivity): "
           "of the real X images, the share the model found. F1 combines both. Support: number of images.")
a, b = st.columns(2)
for col, model in ((a, "baseline"), (b, "refined")):
    col.markdown(f"**{results.MODEL_TITLES[model]}**")
    table = results.per_class_table(m, model, subset)
    shown = table.apply(lambda c: c if c.name == "support" else c.map(lambda v: "" if v != v else f"{v:.3f}"))
    col.dataframe(shown, width="stretch",
                  column_config={c: st.column_config.TextColumn(c) for c in ("precision", "recall", "f1-score")})

# --- confusion matrices -----------------------------------------------------------------------
st.subheader("Confusion matrices")
st.caption("Rows: true class; columns: what the model said. The diagonal holds the correct answers.")
a, b = st.columns(2)
for col, model in ((a, "baseline"), (b, "refined")):
    cm = results.confusion(m, model, subset)
    fig = px.imshow(cm.values, x=list(cm.columns), y=list(cm.index), text_auto=True, color_continuous_scale="RdPu",
                    labels=dict(x="predicted", y="true", color="images"), title=results.MODEL_TITLES[model])
    fig.update_layout(height=360, coloraxis_showscale=False)
    col.plotly_chart(fig, width="stretch", key=f"cm_{model}")

# --- ROC and reliability -----------------------------------------------------------------------
st.subheader("ROC curves and calibration")
a, b = st.columns(2)
roc = go.Figure()
for model, dash in (("baseline", "dot"), ("refined", "solid")):
    for cls, (fpr, tpr, auc) in results.roc_points(m, model, subset).items():
        roc.add_scatter(x=fpr, y=tpr, mode="lines", name=f"{model} · {cls} (AUC {auc:.2f})",
                        line=dict(color=COLOURS.get(cls), dash=dash))
roc.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="#bbbbbb", dash="dash"))
roc.update_layout(title="ROC, one class vs the rest (solid: refined, dotted: baseline)", height=420,
                  xaxis_title="false-positive rate", yaxis_title="true-positive rate (sensitivity)")
a.plotly_chart(roc, width="stretch", key="roc")

rel = go.Figure()
rel.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line=dict(color="#bbbbbb", dash="dash"))
for model in results.MODELS:
    bins = results.reliability(m, model, subset)
    if not bins.empty:
        rel.add_scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", name=model,
                        marker=dict(size=6 + 24 * bins["count"] / bins["count"].max()),
                        line=dict(color=MODEL_COLOURS[model]), text=bins["count"],
                        hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{text} images")
rel.update_layout(title="Reliability: is a 80 % answer right 80 % of the time?", height=420,
                  xaxis=dict(title="mean confidence", range=[0, 1]), yaxis=dict(title="accuracy", range=[0, 1]))
b.plotly_chart(rel, width="stretch", key="reliability")
st.caption(f"Calibration error (ECE): baseline {m['classifiers']['baseline'][subset]['ece']:.3f}, refined "
           f"{m['classifiers']['refined'][subset]['ece']:.3f}. Marker size: number of images in the bin.")

# --- Dice distribution ---------------------------------------------------------------------------
dices = results.dice_values(m, subset)
if not dices.empty:
    st.subheader("Segmentation quality per image")
    fig = px.histogram(dices, x="dice", color="label", color_discrete_map=COLOURS, nbins=20, range_x=[0, 1],
                       barmode="overlay", opacity=0.7, title="Dice of the predicted mask, lesion images",
                       labels={"dice": "Dice (1 = perfect overlap)"})
    fig.update_layout(height=340)
    st.plotly_chart(fig, width="stretch", key="dice_hist")

# --- error browser --------------------------------------------------------------------------------
st.subheader("Where the models disagree or are wrong")
table = results.per_image(m, subset)
if table.empty:
    st.info("metrics.json holds no per-image results.")
    st.stop()
which = st.selectbox("Show test images where", results.CASE_FILTERS, key="case_filter")
picked = results.cases(table, which)
st.caption(f"{len(picked)} of {len(table)} images.")
if picked.empty:
    st.success("None.")
    st.stop()
show_cols = ["image", "label", "refined", "refined_confidence", "baseline", "baseline_confidence", "dice"]
st.dataframe(picked[show_cols], hide_index=True, width="stretch", height=240,
             column_config={"refined_confidence": st.column_config.NumberColumn(format="percent"),
                            "baseline_confidence": st.column_config.NumberColumn(format="percent"),
                            "dice": st.column_config.NumberColumn(format="%.3f")})
image = st.selectbox("Look at", list(picked["image"]), key="case_image")
row = picked[picked["image"] == image].iloc[0]
a, b = st.columns([2, 3])
root = state.dataset_root()
with a:
    if root is None:
        st.info("The dataset is not available here, so the image cannot be shown (set `BUSI_DIR` or run `make data`).")
    else:
        try:
            gray, mask = load_sample(root, image)
            st.image(overlay(gray, mask, mode="contour"), caption=f"{image} — true class {row['label']}; "
                     "pink: ground-truth outline", width="stretch")
        except BusiError as exc:
            st.warning(str(exc))
with b:
    classes = results.classes(m)
    fig = go.Figure()
    for model in results.MODELS:
        fig.add_bar(name=results.MODEL_TITLES[model], x=classes, y=[row[f"{model}:{c}"] for c in classes],
                    marker_color=MODEL_COLOURS[model], text=[f"{row[f'{model}:{c}']:.0%}" for c in classes],
                    textposition="outside")
    fig.update_layout(barmode="group", height=320, yaxis=dict(range=[0, 1.12], tickformat=".0%"),
                      title=f"Probabilities (true class: {row['label']})", legend=dict(orientation="h", y=-0.15))
    st.plotly_chart(fig, width="stretch", key="case_probs")
    def ok(right: bool) -> str:
        return ":green[right]" if right else ":red[wrong]"

    dice = "" if row["dice"] is None or row["dice"] != row["dice"] else f" Segmentation Dice {row['dice']:.3f}."
    st.markdown(f"Refined: **{row['refined']}** ({ok(row['refined_correct'])}); baseline: **{row['baseline']}** "
                f"({ok(row['baseline_correct'])}).{dice}")
