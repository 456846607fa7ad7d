"""Generate small DICOM files in memory for tests (pydicom; nothing downloaded)."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ULTRASOUND_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
ULTRASOUND_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def make_dicom(
    pixels: np.ndarray,
    *,
    bits: Literal[8, 16] = 8,
    photometric: Literal["MONOCHROME2", "MONOCHROME1", "RGB"] = "MONOCHROME2",
    spacing: tuple[float, float] | None = (0.1, 0.1),
    spacing_tag: Literal["PixelSpacing", "ImagerPixelSpacing", "UltrasoundRegions"] = "PixelSpacing",
    slope: float = 1,
    intercept: float = 0,
    window: tuple[float, float] | None = None,
    frames: int = 1,
    preamble: bool = True,
    with_pixel_data: bool = True,
    rows: int | None = None,
    columns: int | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> bytes:
    """Return the bytes of an uncompressed Ultrasound Image Storage DICOM.

    ``pixels``: (H, W) for MONOCHROME*, (H, W, 3) for RGB; one frame, repeated
    ``frames`` times. ``spacing`` is (row, col) mm written as ``spacing_tag``
    (``UltrasoundRegions`` writes SequenceOfUltrasoundRegions in cm). ``window``
    is (center, width). Rescale Slope/Intercept are written unless 1/0.
    ``rows``/``columns`` override the header dimensions (to fake a huge image);
    ``transfer_syntax`` only changes the declared UID (data stays uncompressed).
    """
    pixels = np.asarray(pixels)
    dtype = np.uint8 if bits == 8 else np.uint16
    arr = pixels.astype(dtype)
    samples = 3 if photometric == "RGB" else 1
    if samples == 3 and (arr.ndim != 3 or arr.shape[2] != 3):
        raise ValueError("RGB needs an (H, W, 3) array")
    if samples == 1 and arr.ndim != 2:
        raise ValueError("MONOCHROME needs an (H, W) array")

    meta = FileMetaDataset()
    sop_class = ULTRASOUND_MULTIFRAME_STORAGE if frames > 1 else ULTRASOUND_IMAGE_STORAGE
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = generate_uid()

    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Test^Phantom"
    ds.PatientID = "TEST0001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows = int(rows if rows is not None else arr.shape[0])
    ds.Columns = int(columns if columns is not None else arr.shape[1])
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = 33.3
    if spacing is not None:
        if spacing_tag == "UltrasoundRegions":
            region = pydicom.Dataset()
            region.RegionSpatialFormat = 1
            region.RegionDataType = 1
            region.RegionFlags = 0
            region.RegionLocationMinX0 = 0
            region.RegionLocationMinY0 = 0
            region.RegionLocationMaxX1 = int(arr.shape[1]) - 1
            region.RegionLocationMaxY1 = int(arr.shape[0]) - 1
            region.PhysicalUnitsXDirection = 3  # cm
            region.PhysicalUnitsYDirection = 3
            region.PhysicalDeltaX = float(spacing[1]) / 10.0
            region.PhysicalDeltaY = float(spacing[0]) / 10.0
            ds.SequenceOfUltrasoundRegions = [region]
        else:
            setattr(ds, spacing_tag, [f"{spacing[0]:g}", f"{spacing[1]:g}"])
    if slope != 1 or intercept != 0:
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter = f"{window[0]:g}"
        ds.WindowWidth = f"{window[1]:g}"
    if with_pixel_data:
        raw = np.ascontiguousarray(arr).tobytes() * frames
        if len(raw) % 2:
            raw += b"\x00"
        if pydicom.uid.UID(transfer_syntax).is_compressed:
            # Declared compressed: wrap the (not really compressed) bytes in fragments.
            frame_len = len(raw) // frames
            ds.PixelData = encapsulate([raw[i * frame_len:(i + 1) * frame_len] for i in range(frames)])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = raw
            ds["PixelData"].VR = "OB" if bits == 8 else "OW"

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    if not preamble:
        data = data[132:]  # drop the 128-byte preamble and "DICM"
    return data
