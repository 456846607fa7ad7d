"""BUSI CAD research dashboard: `streamlit run dashboard/app.py` (or `make run`).

One module per page under dashboard/views/; the work lives in pipeline/.
"""

from __future__ import annotations

import streamlit as st

from dashboard.common import DISCLAIMER, guarded

# An emoji page icon becomes an inline SVG favicon; a ":material/...:" one would make every browser fetch
# the icon from fonts.gstatic.com (an outside request, failing offline). The nav icons below use the
# Material Symbols font that Streamlit serves itself.
st.set_page_config(page_title="BUSI CAD — research dashboard", page_icon="🩺", layout="wide")

pages = [
    st.Page("views/diagnose.py", title="Diagnose", icon=":material/stethoscope:", default=True),
    st.Page("views/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("views/models.py", title="Models", icon=":material/analytics:"),
    st.Page("views/clinics.py", title="Clinics", icon=":material/local_hospital:"),
    st.Page("views/histopathology.py", title="Histopathology (IDC)", icon=":material/biotech:"),
]

nav = st.navigation(pages)

with st.sidebar:
    st.markdown("**BUSI CAD** — breast-ultrasound segmentation and classification, for teaching "
                "and research on the BUSI dataset.")
    st.caption(f":material/warning: {DISCLAIMER}")

guarded(nav.run)
