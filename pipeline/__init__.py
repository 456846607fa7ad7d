"""Breast-ultrasound CAD library: data, networks, training, evaluation, prediction.

Plain Python: never imports streamlit. Driven by ``python -m pipeline <command>``.
"""

__version__ = "0.2.0"
