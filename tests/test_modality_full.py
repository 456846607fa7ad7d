"""The modality rule over every frame of BUSI and BUS-BRA and every patch of the IDC pack (full tier: it loops over
whole datasets). The README quotes these counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.imageio import load_image
from pipeline.inference.modality import GRAYSCALE, HISTOPATHOLOGY, classify

pytestmark = pytest.mark.full


def test_every_ultrasound_frame_is_grayscale_and_none_histopathology(busi_dir, busbra_dir):
    paths = [p for p in busi_dir.glob("*/*.png") if "_mask" not in p.name] + list((busbra_dir / "Images").glob("*.png"))
    assert len(paths) >= 780 + 1875
    with ThreadPoolExecutor(2) as pool:  # decoding and the statistics release the GIL: both cores
        kinds = list(pool.map(lambda p: classify(load_image(p).rgb).kind, paths))
    assert kinds.count(HISTOPATHOLOGY) == 0
    assert kinds.count(GRAYSCALE) == len(paths)


def test_every_idc_patch_is_histopathology_or_other_never_grayscale(idc_dir):
    from pipeline.data.idc import load_idc

    pack = load_idc(idc_dir)
    kinds = [classify(p).kind for p in pack.images]
    assert kinds.count(GRAYSCALE) == 0
    assert kinds.count(HISTOPATHOLOGY) >= 0.975 * len(pack)  # measured 3,602 of 3,674
