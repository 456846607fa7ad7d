"""Helpers shared by the dashboard pages (the only place besides pages that imports streamlit)."""

from __future__ import annotations

import streamlit as st

DISCLAIMER = (
    "Research tool, not a medical device. Predictions are not a diagnosis and must not "
    "guide clinical decisions."
)


def disclaimer() -> None:
    """Show the research-use disclaimer; every page calls this once."""
    st.caption(f"⚠️ {DISCLAIMER}")
