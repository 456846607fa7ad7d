"""Lesion measurements from a 0/1 mask: size, bounding box, shape, number of components.

Definitions (all on the mask's lesion pixels, 8-connectivity):

* ``area_px``: number of lesion pixels; ``area_mm2`` when the pixel spacing is known.
* ``bbox``: (x, y, width, height) of the smallest box holding every lesion pixel.
* ``taller_than_wide``: the box is higher (vertical, the beam direction) than wide — the
  BI-RADS "not parallel" orientation sign, reported as a fact, not a finding.
* ``circularity``: 4·π·A / P² of the largest component (1 for a disc, lower for elongated or
  lobulated shapes). The perimeter is measured on the contour simplified by 1 px (so the pixel
  staircase does not count as boundary) plus the half-pixel border, which makes a digital disc
  score ≈ 1.
* ``solidity``: area / convex-hull area of the largest component; ``irregularity`` = 1 − solidity
  (0 for a convex shape, higher for spiculated or lobulated margins).
* ``n_components``: number of separate lesion regions.

An empty mask gives zeros for counts and None for everything else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

CONTOUR_EPSILON_PX = 1.0


@dataclass(frozen=True)
class Measurements:
    """Measurements of one mask (see the module docstring for the definitions)."""

    area_px: int
    area_fraction: float
    n_components: int
    bbox: tuple[int, int, int, int] | None  # x, y, width, height
    width_px: int | None
    height_px: int | None
    taller_than_wide: bool | None
    aspect_ratio: float | None  # height / width
    circularity: float | None
    solidity: float | None
    irregularity: float | None
    pixel_spacing_mm: tuple[float, float] | None = None
    area_mm2: float | None = None
    width_mm: float | None = None
    height_mm: float | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable dict (tuples become lists)."""
        out = asdict(self)
        for key in ("bbox", "pixel_spacing_mm"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out


def _perimeter(contour: np.ndarray) -> float:
    simple = cv2.approxPolyDP(contour, CONTOUR_EPSILON_PX, True)
    return float(cv2.arcLength(simple, True)) + math.pi


def measure(mask: np.ndarray, pixel_spacing_mm: tuple[float, float] | None = None) -> Measurements:
    """Measure the lesion(s) of a 0/1 (or 0/255, or boolean) mask.

    ``pixel_spacing_mm``: (row, column) spacing in mm per pixel, e.g. from DICOM PixelSpacing.
    """
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    area = int(m.sum())
    spacing = tuple(float(v) for v in pixel_spacing_mm) if pixel_spacing_mm else None
    if area == 0:
        return Measurements(0, 0.0, 0, None, None, None, None, None, None, None, None,
                            spacing, 0.0 if spacing else None, None, None)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    n_components = n_labels - 1
    ys, xs = np.nonzero(m)
    x0, y0 = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == largest).astype(np.uint8)
    comp_area = float(stats[largest, cv2.CC_STAT_AREA])
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)
    perimeter = _perimeter(contour)
    circularity = min(1.0, 4 * math.pi * comp_area / perimeter**2)
    hull = cv2.convexHull(contour)
    # hull polygon passes through pixel centres: add the half-pixel border like the perimeter
    hull_area = float(cv2.contourArea(hull)) + 0.5 * float(cv2.arcLength(hull, True)) + math.pi / 4
    solidity = min(1.0, comp_area / hull_area) if hull_area > 0 else 1.0
    area_mm2 = width_mm = height_mm = None
    if spacing:
        row_mm, col_mm = spacing
        area_mm2, width_mm, height_mm = area * row_mm * col_mm, w * col_mm, h * row_mm
    return Measurements(
        area_px=area, area_fraction=float(area / m.size), n_components=int(n_components),
        bbox=(x0, y0, w, h), width_px=w, height_px=h,
        taller_than_wide=bool(h * (spacing[0] if spacing else 1) > w * (spacing[1] if spacing else 1)),
        aspect_ratio=float(h / w), circularity=float(circularity), solidity=float(solidity),
        irregularity=float(1.0 - solidity), pixel_spacing_mm=spacing,
        area_mm2=area_mm2, width_mm=width_mm, height_mm=height_mm,
    )


def describe(m: Measurements) -> list[str]:
    """Plain sentences for non-experts describing the measurements."""
    if m.area_px == 0:
        return ["No lesion was outlined by the segmentation model."]
    size = f"{m.area_px:,} px" + (f" ({m.area_mm2:,.1f} mm²)" if m.area_mm2 is not None else "")
    lines = [f"Outlined area: {size}, {m.area_fraction:.1%} of the image."]
    dims = f"{m.width_px} × {m.height_px} px"
    if m.width_mm is not None:
        dims += f" ({m.width_mm:.1f} × {m.height_mm:.1f} mm)"
    lines.append(f"Bounding box (width × height): {dims}; "
                 + ("taller than wide." if m.taller_than_wide else "wider than tall (parallel orientation)."))
    shape = "round" if m.circularity >= 0.85 else "oval or slightly lobulated" if m.circularity >= 0.6 else "irregular"
    lines.append(f"Shape: circularity {m.circularity:.2f} ({shape}), irregularity {m.irregularity:.2f}.")
    if m.n_components > 1:
        lines.append(f"The mask has {m.n_components} separate regions.")
    return lines
