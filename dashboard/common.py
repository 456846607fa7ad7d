"""Helpers shared by the dashboard pages (the only place besides pages that imports streamlit)."""

from __future__ import annotations

import streamlit as st

from pipeline.inference.report import DISCLAIMER  # one wording for the pages and the JSON report

__all__ = ["DISCLAIMER", "disclaimer"]


def disclaimer() -> None:
    """Show the research-use disclaimer; every page calls this once."""
    st.caption(f":material/warning: {DISCLAIMER}")
