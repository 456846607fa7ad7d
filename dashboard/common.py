"""Helpers shared by the dashboard pages (the only place besides pages that imports streamlit)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from pipeline.inference.report import DISCLAIMER  # one wording for the pages and the JSON report

__all__ = ["DISCLAIMER", "disclaimer", "guarded"]

log = logging.getLogger("busi_cad.dashboard")


def disclaimer() -> None:
    """Show the research-use disclaimer; every page calls this once."""
    st.caption(f":material/warning: {DISCLAIMER}")


def guarded(run: Callable[[], None]) -> None:
    """Run a page; an unexpected error becomes a short message (the traceback goes to the server log only).

    ``st.stop()`` and reruns are not errors (Streamlit raises them as BaseException) and pass through.
    """
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - no traceback ever reaches a user
        log.exception("page failed")
        st.error(f"**Something went wrong on this page** ({type(exc).__name__}: {exc}). Reload the page to try "
                 "again; the details are in the server log.", icon=":material/error:")
