"""Diagnose page (radiologists): one image -> mask, label, Grad-CAM, measurements, report."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.common import disclaimer, wrapping_columns
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

UPLOAD_KEY = "diag_upload"  # (name, bytes) of the last upload: the uploader itself forgets it on a page switch
TRUTH_KEY = "diag_truth"
st.session_state.setdefault("heat_alpha", 0.5)

t_run = time.perf_counter()
st.title("Diagnose an ultrasound image")
disclaimer()


def wait_for_models():
    """The predictor, showing the loading steps while the worker starts (the page stays usable meanwhile:
    a new upload interrupts this wait); stops the page with a clear message when the models cannot load."""
    bar = st.empty()

    def show(progress: tuple[int, int, str]) -> None:
        step, steps, text = progress
        bar.progress(step / (steps + 1), text=f"Loading the models (once per server), step {step} of {steps}: "
                                              f"{text}…")

    predictor, error = state.get_predictor(on_progress=show)
    bar.empty()
    if error:
        st.error(f"**The models could not be loaded**, so no diagnosis is possible right now.\n\n{error}")
        st.caption("The Dataset and Models pages still work.")
        st.stop()
    return predictor


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
    kept = state.kept_upload(upload, UPLOAD_KEY)
    if kept is None:
        st.info("Upload a breast-ultrasound image to get the lesion outline, the predicted class and "
                "measurements. " + imageio.describe_supported())
        wait_for_models()
        st.caption(":material/check_circle: Models loaded and ready.")
        st.stop()
    name, data = kept
    if upload is None:
        st.caption(f":material/history: Your last upload, **{name}**, is shown below; upload another image to "
                   "replace it.")
    predictor = wait_for_models()
    try:
        diag = state.analyse_upload(predictor, data, name)
    except ImageLoadError as exc:
        st.error(f"**This file cannot be analysed.** {exc}")
        st.stop()
    result_key = state.digest(data)
    with st.expander("Compare with your own ground-truth mask (optional)"):
        truth = st.file_uploader("Ground-truth mask of this image (white lesion on black, same size)",
                                 type=None, key="truth_upload")
        kept_truth = state.kept_upload(truth, f"{TRUTH_KEY}:{result_key}")  # a mask belongs to its image
        if kept_truth is not None:
            try:
                mask = diagnosis.load_truth_mask(kept_truth[1], kept_truth[0], diag.image.shape)
                diag = diag.with_truth_mask(mask)
                if truth is None:
                    st.caption(f"Using your last ground-truth mask, **{kept_truth[0]}**.")
            except ImageLoadError as exc:
                st.error(f"**This mask cannot be used.** {exc}")
else:
    test = index[index["subset"] == "test"].sort_values(["label", "number"])
    labels = dict(zip(test["image"], test["label"]))
    choice = st.selectbox("Test image (true class in brackets)", list(labels), key="dataset_image",
                          format_func=lambda s: f"{s.rsplit('/', 1)[-1]}  [{labels[s]}]")
    predictor = wait_for_models()
    diag = state.analyse_dataset(predictor, choice, labels[choice])
    result_key = f"dataset:{choice}"

pred = diag.prediction

# --- scope gate: refuse pictures that are not breast ultrasound (unless the user insists) -------------
refusal = diagnosis.refusal_message(pred)
analysed_anyway = None
if refusal:
    st.error(f"**{refusal}**", icon=":material/block:")
    st.caption(diagnosis.refusal_detail(pred))
    analysed_anyway = st.toggle("Analyse anyway", key=f"analyse_anyway:{result_key}",
                                help="Show the models' research-only answer for this image, marked as out of scope.")
    if not analysed_anyway:
        st.markdown("The models were trained on breast-ultrasound B-mode frames only; on other pictures their "
                    "answer is meaningless, so **no label is shown**. If this really is a breast ultrasound (an "
                    "unusual scanner, preset or export), *Analyse anyway* shows the models' **research-only "
                    "answer**, marked as out of scope.")
        col_refused, _ = st.columns([1, 2])
        col_refused.image(diag.image.rgb, caption=f"{diag.name} ({diag.image.width}×{diag.image.height} px)",
                          width="stretch")
        st.download_button("Report (JSON)", to_json(diagnosis.report_for(diag, predictor, analysed_anyway=False)),
                           file_name=f"{Path(diag.name).stem or 'image'}_report.json", mime="application/json",
                           key="dl_json_refused", icon=":material/download:")
        st.stop()
    st.markdown("You asked for the models' answer anyway: below is their **research-only answer**, not a label. "
                "On a picture outside their scope it is not meaningful.")

# --- the zoomable view beside the answer -----------------------------------------------------------
# Left: the image with the outlines, large, to zoom and pan. Its style controls (filled / contour / off, opacity,
# ground truth on / off) live inside the figure and act in the browser: the figure sent stays the same, so a
# zoom survives any change of style (Streamlit would redraw a changed figure from scratch, unzoomed).
# Right: the answer at a glance (below the image when the window is narrow). Below: the original, the Grad-CAM
# slot (filled last) and the measurements.
has_truth = diag.truth_mask is not None
OPACITY = 0.4  # the filled lesion's starting opacity (and the download's)


def _data_uri(array) -> str:
    """The frame as JPEG (small and quick to send), the RGBA outline layers as PNG (transparent, sharp)."""
    if array.ndim == 3 and array.shape[2] == 4:
        return "data:image/png;base64," + base64.b64encode(diagnosis.png_bytes(array)).decode("ascii")
    return "data:image/jpeg;base64," + base64.b64encode(diagnosis.jpeg_bytes(array)).decode("ascii")


def zoomable_figure(layers: dict, width: int, height: int) -> go.Figure:
    """The image and its outline layers as plotly images (PNG data URIs: small, sharp): scroll to zoom, drag to
    pan, double-click to reset; buttons and a slider in the figure switch and blend the layers."""
    fig = go.Figure()
    names = [("image", "x %{x}, y %{y}<extra></extra>", 1.0), ("fill", None, OPACITY), ("outline", None, 1.0)]
    if "truth" in layers:
        names.append(("truth", None, 1.0))
    for name, hover, opacity in names:
        fig.add_trace(go.Image(source=_data_uri(layers[name]), name=name, opacity=opacity,
                               hovertemplate=hover, hoverinfo=None if hover else "skip"))
    n = len(names)

    def shown(fill: bool, outline: bool, truth: bool) -> list[bool]:
        return [True, fill, outline] + ([truth] if n == 4 else [])

    styles = [("Prediction filled", shown(True, True, True)), ("Outline only", shown(False, True, True)),
              ("No prediction", shown(False, False, True))]
    menus = [dict(type="buttons", direction="right", x=0, xanchor="left", y=1.0, yanchor="bottom", pad=dict(b=4),
                  showactive=True, active=0, font=dict(size=12),
                  buttons=[dict(label=label, method="restyle", args=[{"visible": vis[1:3]}, [1, 2]])
                           for label, vis in styles])]
    if n == 4:
        menus.append(dict(type="buttons", direction="right", x=1, xanchor="right", y=1.0, yanchor="bottom",
                          pad=dict(b=4), showactive=True, active=0, font=dict(size=12),
                          buttons=[dict(label="Ground truth", method="restyle", args=[{"visible": [True]}, [3]]),
                                   dict(label="Hide", method="restyle", args=[{"visible": [False]}, [3]])]))
    slider = dict(active=round(OPACITY * 10), x=0, len=1, y=0, yanchor="top", pad=dict(t=6, b=0),
                  currentvalue=dict(prefix="Fill opacity ", font=dict(size=12)), font=dict(size=10),
                  steps=[dict(label=f"{v / 10:.1f}", method="restyle", args=[{"opacity": [v / 10]}, [1]])
                         for v in range(11)])
    axis = dict(visible=False, showgrid=False, zeroline=False)
    # No fixed ranges: the image autoranges (y downwards, as images go).
    fig.update_xaxes(**axis, constrain="domain")
    fig.update_yaxes(**axis, scaleanchor="x", constrain="domain")
    fig.update_layout(dragmode="pan", margin=dict(l=0, r=0, t=34, b=64), plot_bgcolor="rgba(0,0,0,0)",
                      height=int(min(640, max(280, 560 * height / max(width, 1)))) + 98, updatemenus=menus,
                      sliders=[slider], showlegend=False)
    return fig


col_zoom, col_answer = wrapping_columns([3, 2], "diag_main", 300)
# The answer first: the label reaches the screen before the (larger) picture is sent.
with col_answer:
    out_of_scope = bool(analysed_anyway)
    if out_of_scope:
        st.warning("**Out of scope — research-only answer**, not a label (the reason is above).",
                   icon=":material/block:")
    st.subheader(diagnosis.answer_heading(pred, out_of_scope))
    t_label = time.perf_counter() - t_run
    st.markdown(f"For **{diag.name}**, the refined model gives **{pred.label}** with **{pred.confidence:.0%}** "
                "probability "
                f"(baseline model: {pred.baseline_label}, "
                f"{pred.baseline_probabilities[pred.baseline_label]:.0%})"
                + ("; not meaningful for this picture." if out_of_scope else "."))
    sentence = diagnosis.agreement_sentence(pred)
    if sentence:
        st.warning(sentence, icon=":material/balance:")
    elif out_of_scope:
        st.info("Both models give the same answer, which means nothing on a picture outside their scope.",
                icon=":material/balance:")
    else:
        st.success("Both models agree.", icon=":material/check_circle:")
    for w in diagnosis.all_warnings(diag):
        st.warning(w, icon=":material/warning:")
    # Horizontal bars: class names and percentages stay readable in a narrow column; the legend sits above
    # the bars, clear of the axis.
    fig = go.Figure()
    for model, probs, colour in (("Refined", pred.probabilities, "#c2185b"),
                                 ("Baseline", pred.baseline_probabilities, "#9e9e9e")):
        fig.add_bar(name=model, y=list(probs), x=list(probs.values()), orientation="h", marker_color=colour,
                    text=[f"{v:.0%}" for v in probs.values()], textposition="outside", cliponaxis=False,
                    hovertemplate="%{y}: %{x:.1%}<extra>" + model + "</extra>")
    fig.update_layout(barmode="group", height=260, margin=dict(l=10, r=36, t=36, b=10),
                      xaxis=dict(range=[0, 1.18], tickformat=".0%", title=None),
                      yaxis=dict(autorange="reversed", title=None),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0, xanchor="left"), title=None)
    st.plotly_chart(fig, width="stretch", key="probs_chart")
    st.caption("Refined: lesion crop + whole image; baseline: whole image only.")

with col_zoom:
    st.plotly_chart(zoomable_figure(diagnosis.zoom_layers(diag), diag.image.width, diag.image.height),
                    width="stretch", config=ZOOM_CONFIG, key="zoom_overlay",
                    alt="Ultrasound image with the predicted lesion outline")
    st.caption("Pink: predicted lesion" + ("; cyan: ground truth" if has_truth else "") + ". **Scroll to zoom, "
               "drag to pan, double-click to reset**; the buttons and the slider in the picture change the outlines "
               "and keep the zoom; full screen: the button at the top right.")

col_orig, col_cam = wrapping_columns(2, "diag_images", 300)
col_orig.image(diag.image.rgb, caption=f"Original — {diag.name} ({diag.image.width}×{diag.image.height} px)",
               width="stretch")
cam_slot = col_cam.empty()  # filled last; its opacity slider below it, so both pictures start level
heat_alpha = col_cam.slider("Heatmap opacity", 0.0, 1.0, step=0.05, key="heat_alpha")
cam_slot.info("Computing the Grad-CAM heatmap…")

left, right = wrapping_columns([3, 2], "diag_details", 300)
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

st.caption(f"The models took {pred.timings_ms.get('total', 0):.0f} ms in their own worker process "
           f"(segmentation {pred.timings_ms.get('segmentation', 0):.0f} ms, classifiers and scope check "
           f"{pred.timings_ms.get('classification', 0) + pred.timings_ms.get('scope', 0):.0f} ms; the first look "
           f"at an image, cached afterwards); this page run reached the label {t_label * 1000:.0f} ms after it "
           "started. Sending the file and drawing the page in your browser come on top.")

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
report = diagnosis.report_for(diag, predictor, heat, analysed_anyway=analysed_anyway,
                              display={"mask_opacity": OPACITY, "mask_style": "filled", "ground_truth_outline": has_truth})
stem = Path(diag.name).stem or "image"
d1, d2, _ = st.columns(3)
d1.download_button("Overlay (PNG)", diagnosis.download_overlay(diag, OPACITY, "filled"),
                   help="The image with the predicted lesion filled" + (" and the ground truth outlined" if has_truth
                                                                        else "")
                   + ", then the label, its confidence, the colour legend and the research-tool line.",
                   file_name=f"{stem}_overlay.png",
                   mime="image/png", key="dl_png", icon=":material/download:")
d2.download_button("Report (JSON)", to_json(report), file_name=f"{stem}_report.json",
                   mime="application/json", key="dl_json", icon=":material/download:")
