"""Helpers shared by the dashboard pages (the only place besides pages that imports streamlit)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import streamlit as st

from pipeline.inference.report import DISCLAIMER  # one wording for the pages and the JSON report

__all__ = ["DISCLAIMER", "disclaimer", "guarded", "page_style", "wrapping_columns"]

log = logging.getLogger("busi_cad.dashboard")
WRAP_WIDTHS = (150, 300, 420)  # the minimum column widths wrapping_columns offers (px)

# Columns in a container keyed "wrapNNN_..." move onto a new row when narrower than NNN px, instead of
# squeezing charts into slivers or cutting metric labels at 800 px.
_CSS = "\n".join(
    [".stMainBlockContainer [class*='st-key-wrap'] [data-testid='stHorizontalBlock'] {flex-wrap: wrap;}"]
    + [f".stMainBlockContainer [class*='st-key-wrap{w}_'] [data-testid='stHorizontalBlock'] > "
       f"[data-testid='stColumn'] {{min-width: min({w}px, 100%) !important;}}"
       for w in WRAP_WIDTHS])


def disclaimer() -> None:
    """Show the research-use disclaimer; every page calls this once."""
    st.caption(f":material/warning: {DISCLAIMER}")


def page_style() -> None:
    """The app's few style rules (app.py calls this on every run)."""
    st.html(f"<style>{_CSS}</style>")


def wrapping_columns(spec: int | Sequence[float], key: str, min_px: int = 300, **kwargs):
    """``st.columns(spec)`` whose columns wrap onto new rows when narrower than ``min_px`` (one of WRAP_WIDTHS)."""
    if min_px not in WRAP_WIDTHS:
        raise ValueError(f"min_px must be one of {WRAP_WIDTHS}")
    return st.container(key=f"wrap{min_px}_{key}").columns(spec, **kwargs)


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
