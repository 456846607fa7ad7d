"""BUSI CAD research dashboard: `streamlit run dashboard/app.py` (or `make run`).

One module per page under dashboard/pages/; the work lives in pipeline/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.common import DISCLAIMER  # noqa: E402

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="BUSI CAD — research dashboard", page_icon=":material/stethoscope:", layout="wide")

pages = [
    st.Page("pages/diagnose.py", title="Diagnose", icon=":material/stethoscope:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("pages/models.py", title="Models", icon=":material/analytics:"),
]
if (HERE / "pages" / "clinics.py").is_file():  # owned by the clinics work; shown once it exists
    pages.append(st.Page("pages/clinics.py", title="Clinics", icon=":material/local_hospital:"))

nav = st.navigation(pages)

with st.sidebar:
    st.markdown("**BUSI CAD** — breast-ultrasound segmentation and classification, for teaching "
                "and research on the BUSI dataset.")
    st.caption(f":material/warning: {DISCLAIMER}")

nav.run()
