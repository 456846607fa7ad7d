"""BUSI CAD research dashboard: `streamlit run dashboard/app.py` (or `make run`).

One module per page under dashboard/views/; the work lives in pipeline/. A new page is one more line
in ``PAGES`` (file under views/, title, Material icon); a file that is absent is simply not listed.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.common import DISCLAIMER, guarded, page_style

# An emoji page icon becomes an inline SVG favicon; a ":material/...:" one would make every browser fetch
# the icon from fonts.gstatic.com (an outside request, failing offline). The nav icons below use the
# Material Symbols font that Streamlit serves itself.
st.set_page_config(page_title="BUSI CAD — research dashboard", page_icon="🩺", layout="wide")

PAGES = (  # (module under views/, title, icon); the first is the default page
    ("diagnose", "Diagnose", ":material/stethoscope:"),
    ("dataset", "Dataset", ":material/photo_library:"),
    ("models", "Models", ":material/analytics:"),
    ("clinics", "Clinics", ":material/local_hospital:"),
    ("histopathology", "Histopathology (IDC)", ":material/biotech:"),
)

nav = st.navigation([st.Page(f"views/{name}.py", title=title, icon=icon, default=i == 0)
                     for i, (name, title, icon) in enumerate(PAGES)])

state.note_page(nav.url_path)
state.keep_page_state()  # results, filters and queries survive switching pages
state.start_models()  # the models load in their own process while the first page is used
page_style()

with st.sidebar:
    st.markdown("**BUSI CAD** — breast-ultrasound segmentation and classification, for teaching "
                "and research on the BUSI dataset.")
    st.caption(f":material/warning: {DISCLAIMER}")

guarded(nav.run)
