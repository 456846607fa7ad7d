"""Diagnose page (radiologists): one image -> mask, label, Grad-CAM, measurements, report."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.common import disclaimer
from pipeline import imageio
from pipeline.errors import ImageLoadError
from pipeline.inference.measure import describe
from pipeline.inference.report import to_json
from pipeline.views import diagnosis

ZOOM_CONFIG = {  # the zoomable overlay: wheel zooms, drag pans, double-click goes back to the whole image
    "scrollZoom": True, "doubleClick": "reset", "displaylogo": False, "displayModeBar": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toImage"],
}
UPLOAD = "Upload an image"
PICK = "Pick a test image from the dataset"

st.title("Diagnose an ultrasound image")
disclaimer()

predictor, model_error = state.get_predictor()
if model_error:
    st.error(f"**The models could not be loaded**, so no diagnosis is possible right now.\n\n{model_error}")
    st.caption("The Dataset and Models pages still work.")
    st.stop()

index, _ = state.get_index()
has_test = index is not None and bool((index["subset"] == "test").any())
sources = [UPLOAD] + ([PICK] if has_test else [])
source = st.radio("Image source", sources, horizontal=True, key="source")

diag: diagnosis.Diagnosis | None = None
result_key = ""
if source == UPLOAD:
    upload = st.file_uploader(
        "Ultrasound image (PNG, JPEG, BMP, TIFF or DICOM — the content decides the format)",
        type=None, key="upload", help=imageio.describe_supported(),
    )
    if upload is None:
        st.info("Upload a breast-ultrasound image to get the lesion outline, the predicted class and "
                "measurements. " + imageio.describe_supported())
        st.stop()
    data = upload.getvalue()
    try:
        diag = state.analyse_upload(predictor, data, upload.name)
    except ImageLoadError as exc:
        st.error(f"**This file cannot be analysed.** {exc}")
        st.stop()
    result_key = state.digest(data)
    with st.expander("Compare with your own ground-truth mask (optional)"):
        truth = st.file_uploader("Ground-truth mask of this image (white lesion on black, same size)",
                                 type=None, key="truth_upload")
        if truth is not None:
            try:
                mask = diagnosis.load_truth_mask(truth.getvalue(), truth.name, diag.image.shape)
                diag = diag.with_truth_mask(mask)
            except ImageLoadError as exc:
                st.error(f"**This mask cannot be used.** {exc}")
else:
    test = index[index["subset"] == "test"].sort_values(["label", "number"])
    labels = dict(zip(test["image"], test["label"]))
    choice = st.selectbox("Test image (true class in brackets)", list(labels), key="dataset_image",
                          format_func=lambda s: f"{s.rsplit('/', 1)[-1]}  [{labels[s]}]")
    diag = state.analyse_dataset(predictor, choice, labels[choice])
    result_key = f"dataset:{choice}"

pred = diag.prediction

# --- scope gate: refuse pictures that are not breast ultrasound (unless the user insists) -------------
refusal = diagnosis.refusal_message(pred)
analysed_anyway = None
if refusal:
    st.error(f"**{refusal}**", icon=":material/block:")
    st.markdown("The models were trained on breast-ultrasound B-mode frames only, so on other pictures their "
                "answer is meaningless and no label is shown. If this really is a breast ultrasound (an unusual "
                "scanner, preset or export), you can still look at the result; it will be flagged as out of scope.")
    col_refused, _ = st.columns([1, 2])
    col_refused.image(diag.image.rgb, caption=f"{diag.name} ({diag.image.width}×{diag.image.height} px)",
                      width="stretch")
    analysed_anyway = st.toggle("Analyse anyway", key=f"analyse_anyway:{result_key}",
                                help="Show the models' answer for this image, flagged as out of scope.")
    if not analysed_anyway:
        st.download_button("Report (JSON)", to_json(diagnosis.report_for(diag, predictor, analysed_anyway=False)),
                           file_name=f"{Path(diag.name).stem or 'image'}_report.json", mime="application/json",
                           key="dl_json_refused", icon=":material/download:")
        st.stop()

# --- display controls ---------------------------------------------------------------------
c1, c2, c3 = st.columns([2, 2, 2])
alpha = c1.slider("Mask opacity", 0.0, 1.0, 0.4, 0.05, key="alpha")
mode = c2.radio("Mask style", ["filled", "contour"], horizontal=True, key="mode")
heat_alpha = c3.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="heat_alpha")



def zoomable_figure(png: bytes, width: int, height: int) -> go.Figure:
    """The overlay as a plotly image (PNG data URI: small, sharp): scroll to zoom, drag to pan, equal aspect."""
    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(png).decode("ascii"),
                             hovertemplate="x %{x}, y %{y}<extra></extra>"))
    axis = dict(visible=False, showgrid=False, zeroline=False)
    fig.update_xaxes(**axis, range=[-0.5, width - 0.5], constrain="domain")
    fig.update_yaxes(**axis, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    fig.update_layout(dragmode="pan", margin=dict(l=0, r=0, t=0, b=0), plot_bgcolor="rgba(0,0,0,0)",
                      height=int(min(560, max(220, 480 * height / max(width, 1)))))
    return fig


# --- the zoomable overlay beside the answer -------------------------------------------------------
# Left: the image with the predicted outline, large, to zoom and pan. Right: the label at a glance.
# Below: the original, the Grad-CAM slot (filled last) and the measurements.
over = diagnosis.overlay_image(diag, alpha, mode)
over_png = diagnosis.png_bytes(over)
col_zoom, col_answer = st.columns([3, 2])
with col_zoom:
    st.plotly_chart(zoomable_figure(over_png, diag.image.width, diag.image.height), width="stretch",
                    config=ZOOM_CONFIG, key="zoom_overlay", alt="Ultrasound image with the predicted lesion outline")
    st.caption("Predicted lesion outline (segmentation model). **Scroll to zoom, drag to pan, double-click to "
               "reset**; full screen: the button at the top right of the image.")

with col_answer:
    if analysed_anyway:
        st.warning("**Out of scope — analysed anyway.** " + refusal + " Treat the label below as meaningless.",
                   icon=":material/block:")
    st.subheader(f"Prediction: {pred.label}")
    st.markdown(f"The refined model gives **{pred.label}** with **{pred.confidence:.0%}** probability "
                f"(baseline model: {pred.baseline_label}, "
                f"{pred.baseline_probabilities[pred.baseline_label]:.0%}).")
    sentence = diagnosis.agreement_sentence(pred)
    if sentence:
        st.warning(sentence, icon=":material/balance:")
    else:
        st.success("Both models agree.", icon=":material/check_circle:")
    for w in diagnosis.all_warnings(diag):
        st.warning(w, icon=":material/warning:")
    # Horizontal bars: class names and percentages stay readable in a narrow column.
    fig = go.Figure()
    for model, probs, colour in (("Refined (lesion crop + whole image)", pred.probabilities, "#c2185b"),
                                 ("Baseline (whole image)", pred.baseline_probabilities, "#9e9e9e")):
        fig.add_bar(name=model, y=list(probs), x=list(probs.values()), orientation="h", marker_color=colour,
                    text=[f"{v:.0%}" for v in probs.values()], textposition="outside", cliponaxis=False,
                    hovertemplate="%{y}: %{x:.1%}<extra>" + model + "</extra>")
    fig.update_layout(barmode="group", height=250, margin=dict(l=10, r=30, t=10, b=10),
                      xaxis=dict(range=[0, 1.18], tickformat=".0%", title=None),
                      yaxis=dict(autorange="reversed", title=None),
                      legend=dict(orientation="h", y=-0.12, yanchor="top"), title=None)
    st.plotly_chart(fig, width="stretch", key="probs_chart")

col_orig, col_cam = st.columns(2)
col_orig.image(diag.image.rgb, caption=f"Original — {diag.name} ({diag.image.width}×{diag.image.height} px)",
               width="stretch")
cam_slot = col_cam.empty()
cam_slot.info("Computing the Grad-CAM heatmap…")

left, right = st.columns([3, 2])
with left:
    st.subheader("Lesion measurements")
    m = diag.measurements
    for line in describe(m):
        st.markdown(f"- {line}")
    if m.area_px:
        rows = {
            "Area": f"{m.area_px:,} px" + (f" / {m.area_mm2:,.1f} mm²" if m.area_mm2 is not None else ""),
            "Bounding box (x, y, w, h)": ", ".join(str(v) for v in m.bbox),
            "Width × height": f"{m.width_px} × {m.height_px} px"
            + (f" ({m.width_mm:.1f} × {m.height_mm:.1f} mm)" if m.width_mm is not None else ""),
            "Taller than wide": "yes" if m.taller_than_wide else "no",
            "Circularity (1 = disc)": f"{m.circularity:.2f}",
            "Irregularity (1 − solidity)": f"{m.irregularity:.2f}",
            "Components": str(m.n_components),
        }
        st.table(pd.DataFrame({"value": rows}))
    if diag.image.pixel_spacing_mm is None:
        st.caption("No pixel spacing in this file, so sizes are in pixels only.")

with right:
    if diag.truth_mask is not None or diag.true_label is not None:
        st.subheader("Against the ground truth")
        g1, g2 = st.columns(2)
        if diag.truth_mask is not None:
            g1.metric("Dice", f"{diag.dice:.3f}")
            g2.metric("IoU", f"{diag.iou:.3f}")
        if diag.true_label is not None:
            def ok(right: bool) -> str:
                return ":green[right]" if right else ":red[wrong]"

            st.markdown(f"True class: **{diag.true_label}** — refined model {ok(pred.label == diag.true_label)}, "
                        f"baseline model {ok(pred.baseline_label == diag.true_label)}.")

st.caption(f"Analysed in {pred.timings_ms.get('total', 0):.0f} ms "
           f"(segmentation {pred.timings_ms.get('segmentation', 0):.0f} ms, classifiers and scope check "
           f"{pred.timings_ms.get('classification', 0) + pred.timings_ms.get('scope', 0):.0f} ms; "
           "the models run in their own worker process).")

# --- Grad-CAM (last: the label is already on screen) ----------------------------------------
heat = None
try:
    heat = state.heatmap(predictor, diag, result_key)
    cam_slot.image(diagnosis.heatmap_image(diag, heat, heat_alpha),
                   caption=(f"Grad-CAM of the lesion-crop classifier ({predictor.configs['refined'].fusion_weight:.0%} "
                            "of the refined answer) — " + diagnosis.heatmap_caption(heat)),
                   width="stretch")
except Exception as exc:  # noqa: BLE001 - an explanation failure must not hide the diagnosis
    cam_slot.warning(f"The Grad-CAM heatmap could not be computed ({type(exc).__name__}: {exc}).")

# --- downloads --------------------------------------------------------------------------------
report = diagnosis.report_for(diag, predictor, heat, display={"mask_opacity": alpha, "mask_style": mode},
                              analysed_anyway=analysed_anyway)
stem = Path(diag.name).stem or "image"
d1, d2, _ = st.columns(3)
d1.download_button("Overlay (PNG)", over_png, file_name=f"{stem}_overlay.png",
                   mime="image/png", key="dl_png", icon=":material/download:")
d2.download_button("Report (JSON)", to_json(report), file_name=f"{stem}_report.json",
                   mime="application/json", key="dl_json", icon=":material/download:")
