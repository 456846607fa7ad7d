"""Dataset page (students): class balance, sizes, lesion areas, split, gallery, duplicates."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import state
from dashboard.common import disclaimer, wrapping_columns
from pipeline.data.catalog import summary
from pipeline.data.duplicates import THRESHOLD
from pipeline.views import explore

COLOURS = {"benign": "#2e7d32", "malignant": "#c62828", "normal": "#1565c0"}
PER_PAGE = 12

st.title("The BUSI dataset")
disclaimer()

index, problem = state.get_index()
if index is None:
    state.no_dataset_panel(problem)
    st.stop()

facts = summary(index)
st.markdown(
    f"**{facts['images']:,} breast-ultrasound images** from the BUSI dataset (Al-Dhabyani et al., 2020), each "
    f"with a hand-drawn lesion mask. {facts['multi_mask_images']} images have more than one lesion mask "
    f"(merged), and {facts['images_in_duplicate_groups']} images belong to "
    f"{facts['duplicate_groups']} groups of near-duplicates."
)

# Keyed tabs: the open tab is kept (also across page switches, see state.KEEP_KEYS).
overview, gallery, dups = st.tabs(
    [":material/bar_chart: Overview", ":material/photo_library: Gallery", ":material/content_copy: Duplicates"],
    key="ds_tab", on_change="rerun")
PCT = st.column_config.NumberColumn  # shares are shown as percentages with one decimal everywhere


def pct_column(label: str) -> st.column_config.NumberColumn:
    return PCT(label, format="%.1f%%")


def thumbnails(rows, key: str, per_row: int = 4) -> None:
    """Dataset images side by side (even grid), each captioned with file, label and subset."""
    rows = list(rows.itertuples())
    grid = st.container(key=f"grid_{key}")
    for start in range(0, len(rows), per_row):
        cols = grid.columns(per_row)  # a fixed grid: every thumbnail the same size, at any width
        for col, row in zip(cols, rows[start:start + per_row]):
            col.image(state.get_thumbnail(row.path, row.mask_paths), caption=explore.member_caption(row),
                      width="stretch")

with overview:
    counts = index["label"].value_counts().reindex(list(COLOURS)).dropna().astype(int)
    cdf = counts.rename_axis("class").reset_index(name="images")
    a, b = wrapping_columns(2, "ds_classes", 300)
    a.plotly_chart(px.bar(cdf, x="class", y="images", color="class", color_discrete_map=COLOURS, text="images",
                          title="Images per class").update_layout(showlegend=False, height=340),
                   width="stretch", key="class_bar")
    b.plotly_chart(px.pie(cdf, names="class", values="images", color="class", color_discrete_map=COLOURS,
                          title="Share of each class", hole=0.35).update_layout(height=340),
                   width="stretch", key="class_pie")
    st.caption("Benign images are about half of the data and normal images the fewest: accuracy alone "
               "flatters a model that favours 'benign', so the Models page also reports macro-F1.")

    a, b = wrapping_columns(2, "ds_sizes", 420)
    a.plotly_chart(px.scatter(index, x="width", y="height", color="label", color_discrete_map=COLOURS,
                              opacity=0.6, hover_name="image", title="Image size (pixels)",
                              labels={"label": "class", "width": "width (px)", "height": "height (px)"})
                   .update_layout(height=380, legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1,
                                                          xanchor="right", title=None)),
                   width="stretch", key="size_scatter")
    lesions = index[index["lesion_fraction"] > 0].assign(share=lambda d: d["lesion_fraction"] * 100)
    b.plotly_chart(px.box(lesions, x="label", y="share", color="label", color_discrete_map=COLOURS, points="all",
                          hover_name="image", title="Lesion area per class",
                          labels={"share": "lesion area (% of image)", "label": "class"})
                   .update_layout(showlegend=False, height=380), width="stretch", key="area_box")
    st.caption(f"Sizes vary from {facts['width']['min']}×{facts['height']['min']} to "
               f"{facts['width']['max']}×{facts['height']['max']} px (median "
               f"{facts['width']['median']:.0f}×{facts['height']['median']:.0f}); the models resize every image. "
               "Malignant lesions tend to be larger and more irregular than benign ones.")
    area = explore.lesion_area_table(index)
    shares = ["median share of image", "largest share"]
    st.dataframe(area.assign(**{c: area[c] * 100 for c in shares}) if not area.empty else area, width="stretch",
                 column_config={"label": "class", **{c: pct_column(c) for c in shares}})

    comp = explore.split_composition(index)
    long = comp.reset_index().melt(id_vars="label", var_name="subset", value_name="images")
    a, b = wrapping_columns([3, 2], "ds_split", 300)
    # Grouped bars with the counts above them: in a stacked bar the small val/test segments were too thin
    # for their numbers, which overlapped.
    split_fig = px.bar(long, x="subset", y="images", color="label", color_discrete_map=COLOURS, text="images",
                       title="Split composition per class", barmode="group",
                       labels={"label": "class", "images": "images"})
    split_fig.update_traces(textposition="outside", cliponaxis=False)
    split_fig.update_layout(height=360, yaxis=dict(range=[0, long["images"].max() * 1.15]),
                            legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right", title=None))
    a.plotly_chart(split_fig, width="stretch", key="split_bar")
    with b:
        st.markdown("**Images per subset and class**")
        st.dataframe(comp.rename_axis(index="class", columns=None), width="stretch")
        share = comp.div(comp.sum(axis=1), axis=0)
        st.caption("Each class is split about 70 / 15 / 15 % into train / validation / test "
                   f"(benign test share {share.loc['benign'].get('test', 0):.1%}, malignant "
                   f"{share.loc['malignant'].get('test', 0):.1%}, normal {share.loc['normal'].get('test', 0):.1%}).")

with gallery:
    f1, f2, f3, f4 = wrapping_columns(4, "g_filters_row", 150)
    classes = f1.multiselect("Class", list(COLOURS), key="g_class", placeholder="all classes")
    subsets = f2.multiselect("Subset", ["train", "val", "test"], key="g_subset", placeholder="all subsets")
    dup_choice = f3.selectbox("Near-duplicates", explore.DUPLICATE_CHOICES, key="g_dups")
    sizes = f4.multiselect("Lesion size", explore.SIZE_LABELS, key="g_size", placeholder="all sizes")
    shown = explore.filter_gallery(index, classes, subsets, dup_choice, sizes)
    filters = (tuple(classes), tuple(subsets), dup_choice, tuple(sizes))
    if st.session_state.get("g_filters") != filters:  # new filters: back to the first page
        st.session_state["g_filters"] = filters
        st.session_state["g_page"] = 1
    if shown.empty:
        st.info("No image matches these filters.")
    else:
        n_pages = explore.page_count(len(shown), PER_PAGE)
        st.session_state["g_pages"] = n_pages
        # Clamp before the widget exists; the buttons and the number box change the same state, so they always
        # agree. All three work with Tab and Enter. A typed page that does not exist is replaced, with a note.
        st.session_state["g_page"] = explore.clamp_page(st.session_state.get("g_page", 1), n_pages)

        def step(delta: int) -> None:
            st.session_state["g_page"] = explore.clamp_page(st.session_state.get("g_page", 1) + delta,
                                                            st.session_state["g_pages"])
            st.session_state.pop("g_page_note", None)

        def typed() -> None:
            value, pages = st.session_state.get("g_page"), st.session_state["g_pages"]
            st.session_state["g_page_note"] = explore.page_message(value, pages)
            st.session_state["g_page"] = explore.clamp_page(value, pages)

        def pager(where: str) -> None:
            current = st.session_state["g_page"]
            b1, b2, b3 = st.columns(3, vertical_alignment="bottom")
            b1.button("Previous page", key=f"g_prev_{where}", icon=":material/chevron_left:", on_click=step,
                      args=(-1,), disabled=current <= 1, width="stretch")
            if where == "top":
                b2.number_input(f"Page (1 to {n_pages})", step=1, key="g_page", on_change=typed,
                                help="Type a page number and press Enter.")
            else:
                b2.markdown(f"Page {current} of {n_pages}")
            b3.button("Next page", key=f"g_next_{where}", icon=":material/chevron_right:", on_click=step,
                      args=(1,), disabled=current >= n_pages, width="stretch")

        pager("top")
        note = st.session_state.pop("g_page_note", None)
        if note:
            st.warning(note, icon=":material/info:")
        rows, page, n_pages = explore.page_of(shown, st.session_state["g_page"], PER_PAGE)
        st.markdown(f"**Page {page} of {n_pages}** — {len(shown):,} images match, {len(rows)} shown. "
                    "The pink line is the ground-truth lesion outline; captions give file, class and subset.")
        thumbnails(rows, "g_grid")
        if n_pages > 1:
            pager("bottom")

with dups:
    groups = explore.duplicate_groups(index)
    conflicts = groups[groups["cross_label"]] if not groups.empty else groups
    a, b, c = wrapping_columns(3, "dup_counts", 150)
    a.metric("Near-duplicate groups", f"{len(groups):,}")
    b.metric("Images in groups", f"{int(groups['size'].sum()) if not groups.empty else 0:,}")
    c.metric("Label conflicts", f"{len(conflicts):,}", help="Groups whose images carry different labels")
    st.markdown(
        f"**How they are found:** every image is shrunk to 32×32 pixels and compared with every other; pairs "
        f"whose thumbnails correlate above {THRESHOLD} are linked, and linked images form a group. These are "
        "re-saved copies or consecutive frames of the same lesion — the same patient.\n\n"
        "**Why the split keeps each group in one subset:** if one frame of a lesion were in training and its "
        "near-copy in the test set, the model would be graded on an image it has practically seen, and the test "
        "score would be too optimistic (leakage). So whole groups are assigned to train, validation or test. "
        "Groups whose members carry *different* labels (conflicts) always go to training: their true class is "
        "uncertain, so they must not be used to score a model."
    )
    leaks = explore.groups_split_across_subsets(index)
    if leaks:
        st.error(f"{leaks} group(s) straddle subsets in the current split file — regenerate the split.")
    else:
        st.success("Check: no duplicate group straddles two subsets in the current split.")
    if not conflicts.empty:
        st.markdown("**Cross-label conflicts** — the same lesion filed under different classes, side by side:")
        for g in conflicts.itertuples():
            st.markdown(f"Group {g.group}: {g.labels} ({g.size} images, {g.subsets})")
            thumbnails(explore.group_members(index, g.group), f"conflict_{g.group}")
    if not groups.empty:
        st.markdown("**Look at any group**")
        by_group = groups.set_index("group")
        pick = st.selectbox("Near-duplicate group (conflicts first, then the largest)", list(by_group.index),
                            key="dup_group", format_func=lambda g: f"{g}: {by_group.loc[g, 'size']} images, "
                            f"{by_group.loc[g, 'labels']}" + (" — conflict" if by_group.loc[g, "cross_label"] else ""))
        thumbnails(explore.group_members(index, pick), "dup_pick")
    st.markdown("**All groups**")
    st.dataframe(groups.assign(cross_label=groups["cross_label"].map({True: "yes", False: ""})), hide_index=True,
                 width="stretch", height=320,
                 column_config={"group": "group", "size": st.column_config.NumberColumn("images", width="small"),
                                "labels": "classes", "subsets": "subset", "cross_label": "labels conflict",
                                "images": st.column_config.TextColumn("files", width="large")})
