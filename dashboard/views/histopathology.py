"""Histopathology (IDC) page: an H&E patch or tile -> IDC label, probability, heat map; test gallery; metrics."""

from __future__ import annotations

import streamlit as st

from dashboard import idc_state
from dashboard.common import disclaimer
from pipeline import imageio, paths
from pipeline.errors import ImageLoadError
from pipeline.inference.idc import MAX_TILE_SIDE
from pipeline.inference.idc_answer import heatmap_overlay
from pipeline.views import histopathology as hist

UPLOAD = "Upload a patch or tile"
PICK = "Pick a test patch"
LABEL_COLOURS = {"IDC": "red", "non-IDC": "green"}

st.title("Histopathology: invasive ductal carcinoma (IDC)")
disclaimer()
st.markdown("H&E-stained breast tissue, read in 50×50 px patches (the magnification of the IDC dataset): a single "
            "patch gets a label and a probability; a larger tile is cut into 50 px cells and answered as a heat map "
            f"with the share of cells called IDC (tiles up to {MAX_TILE_SIDE}×{MAX_TILE_SIDE} px).")

predictor, model_error = idc_state.get_predictor()
pack, pack_error = idc_state.get_test_pack()

# --- the answer ---------------------------------------------------------------------------------------
if model_error:
    st.error(f"**The IDC model could not be loaded**, so no patch can be classified right now.\n\n{model_error}")
else:
    sources = [UPLOAD] + ([PICK] if pack is not None else [])
    source = st.radio("Picture", sources, horizontal=True, key="idc_source")
    answer = None
    if source == UPLOAD:
        upload = st.file_uploader("H&E patch or tile (PNG, JPEG or TIFF; the content decides the format)", type=None,
                                  key="idc_upload", help=imageio.describe_supported())
        if upload is None:
            st.info("Upload an H&E patch (50×50 px) or a larger tile, scanned at the dataset's magnification "
                    "(do not resize it).")
        else:
            try:
                answer = idc_state.analyse_upload(predictor, upload.getvalue(), upload.name)
            except ImageLoadError as exc:
                st.error(f"**This file cannot be analysed.** {exc}")
    else:
        images, labels, patients = pack
        idx = st.selectbox("Test patch (patient · true class)", list(range(len(images))), key="idc_patch",
                           format_func=lambda i: f"#{i} · patient {patients[i]} · "
                                                 f"{predictor.config.classes[int(labels[i])]}")
        answer = hist.analyse_patch(predictor, images[idx], f"test patch #{idx} (patient {patients[idx]})")
        st.caption(f"True class: **{predictor.config.classes[int(labels[idx])]}**.")

    if answer is not None and answer.result is None:
        st.error(f"**{answer.refusal}**", icon=":material/block:")
        st.image(hist.display_image(answer.image.rgb, 300), caption=answer.name, width=300)
    elif answer is not None:
        r = answer.result
        col_img, col_answer = st.columns([3, 2])
        with col_answer:
            colour = LABEL_COLOURS.get(r.label, "gray")
            if r.grid.rows * r.grid.cols == 1:
                st.subheader(f"Prediction: :{colour}[{r.label}]")
                st.markdown(f"IDC probability **{r.probabilities[0, 0]:.0%}** (called IDC from "
                            f"{r.threshold:.0%}, the threshold chosen on the validation patients).")
            else:
                st.subheader(f"Prediction: :{colour}[{r.label}] in {r.n_idc} of {r.n_tissue} cells")
                st.markdown(f"**{r.share_idc:.0%}** of the tissue cells are called IDC (probability at least "
                            f"{r.threshold:.0%}); highest cell probability {r.max_probability:.0%}. "
                            f"Grid: {r.grid.rows}×{r.grid.cols} cells of 50 px"
                            + (f", {r.grid.rows * r.grid.cols - r.n_tissue} of them glass background (not scored)"
                               if r.n_tissue < r.grid.rows * r.grid.cols else "") + ".")
            bottom, right = r.grid.padding
            if bottom or right:
                st.caption(f"The tile is not a multiple of 50 px: the last cells were completed by mirroring the "
                           f"tile ({right} px on the right, {bottom} px at the bottom).")
            st.caption(f"{'8 flipped/rotated views averaged' if r.views == 8 else 'One view per cell'}; "
                       f"answered in {answer.ms:.0f} ms.")
            for w in answer.warnings:
                st.warning(w, icon=":material/warning:")
        with col_img:
            alpha = st.slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05, key="idc_alpha")
            over = heatmap_overlay(answer.image.rgb, r, alpha)
            st.image(hist.display_image(over), width="stretch",
                     caption="IDC probability per 50 px cell: blue 0% → red 100%; white outline: cells called IDC.")

# --- gallery of test patches by patient --------------------------------------------------------------------
st.header("Test patches by patient")
if pack is None:
    st.info(pack_error or hist.PACK_HELP, icon=":material/folder_off:")
elif predictor is not None:
    images, labels, patients = pack
    people = {int(row.patient): f"{row.patient} · {row.patches} patches, {row.idc_patches} IDC"
              for row in hist.test_patients(patients, labels).itertuples()}
    patient = st.selectbox(f"Test patient ({len(people)} patients, held out from training and model choice)",
                           list(people), key="idc_patient", format_func=people.get)
    items = idc_state.gallery(predictor, pack, patient)
    st.markdown(hist.gallery_summary(items))
    cols = st.columns(5)
    for k, item in enumerate(items):
        cols[k % 5].image(hist.display_image(item.patch, 150), caption=item.caption(), width="stretch")

# --- metrics -------------------------------------------------------------------------------------------------
st.header("How good is the model?")
metrics = hist.read_metrics(paths.models_dir())
if metrics is None:
    st.info(f"No evaluation yet: `{hist.metrics_path(paths.models_dir())}` is absent. The IDC evaluation writes it "
            "(test once, on the 49 test patients).", icon=":material/analytics:")
st.dataframe(hist.formatted(hist.comparison_table(metrics)), width="stretch")
st.caption(hist.PUBLISHED_CAVEAT)
for subset, title in (("test", "Test patients (all figures in the file)"), ("val", "Validation patients")):
    figures = hist.metrics_table(metrics, subset)
    if not figures.empty:
        st.subheader(title)
        shown = hist.formatted(figures).rename(columns={**hist.METRIC_TITLES, **hist.OTHER_TITLES})
        if "patches" in shown:
            shown["patches"] = figures["n"].astype(int).astype(str).values
        st.dataframe(shown, width="stretch")
for line in hist.how_lines(metrics):
    st.caption(line)
