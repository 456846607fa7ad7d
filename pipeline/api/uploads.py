"""Reading one uploaded image from a multipart request, with every refusal in the project's words.

``read_upload(request)`` parses the body itself (not FastAPI's ``File(...)``), so that two ``file`` parts,
a text field named ``file``, a truncated or malformed body each get their own 422 message, and no
framework text reaches the client. ``decode(upload, max_pixels)`` loads the image (``imageio.load_image``
with the server's pixel limit). Both raise ``UploadError(status, message)``; any endpoint that takes one
image as the field ``file`` (``/predict``, later ``/predict/idc``) uses the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from pipeline.errors import ImageLoadError, ImageTooLargeError
from pipeline.imageio import SUPPORTED_FORMATS, LoadedImage, load_image, sniff_format

FIELD = "file"
HOW = "send the image as the multipart/form-data field 'file' (curl -F 'file=@image.png')"
MAX_FORM_FIELDS = 16  # besides the file: a client may send a few harmless text fields
_TAIL = 512  # bytes of the body kept to check that it ends with its closing boundary


class UploadError(Exception):
    """A request whose upload cannot be used: ``status`` is the HTTP status, ``str(self)`` the message."""

    def __init__(self, status: int, message: str, image: str | None = None):
        super().__init__(message)
        self.status = status
        self.image = image


@dataclass(frozen=True)
class Upload:
    """The one uploaded file: its base name (as the CLI names a path) and its bytes."""

    name: str
    data: bytes


def upload_name(filename: str | None) -> str:
    """The uploaded file's base name (as the CLI names a path in its messages), or "upload"."""
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UploadError(422, f"the request is not multipart/form-data: {HOW}")
    boundary = options.get(b"boundary", b"")
    if not boundary:
        raise UploadError(422, f"the multipart/form-data request has no boundary: {HOW}")
    return boundary


async def read_upload(request: Request) -> Upload:
    """The single file of the field ``file``; UploadError (422) for anything else."""
    closing = b"--" + _boundary(request) + b"--"
    tail = bytearray()

    async def body():
        async for chunk in request.stream():
            tail.extend(chunk)
            del tail[:-_TAIL]
            yield chunk

    try:
        form = await MultiPartParser(request.headers, body(), max_files=2, max_fields=MAX_FORM_FIELDS).parse()
    except MultiPartException as exc:
        raise UploadError(422, f"the multipart body is malformed ({exc}): {HOW}") from exc
    except ClientDisconnect as exc:
        raise UploadError(400, "the client closed the connection before the upload was complete") from exc
    try:
        if closing not in bytes(tail):
            raise UploadError(422, "the multipart body is truncated (its closing boundary is missing): "
                                   "the upload was cut off; send it again")
        parts = form.getlist(FIELD)
        if not parts:
            raise UploadError(422, f"the request has no file: {HOW}")
        if len(parts) > 1:
            raise UploadError(422, f"the request has {len(parts)} parts named 'file'; send exactly one image per request")
        part = parts[0]
        if not isinstance(part, UploadFile):
            raise UploadError(422, f"the field 'file' is text, not a file: {HOW}")
        return Upload(upload_name(part.filename), await part.read())
    finally:
        await form.close()


def image_error_status(data: bytes, exc: ImageLoadError) -> int:
    """413 over the pixel limit, 415 when the content is not a supported format at all, 422 when it is one but
    cannot be used."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    unsupported = f"Supported formats: {', '.join(SUPPORTED_FORMATS)}" in str(exc)
    return 415 if data and unsupported and sniff_format(data) not in SUPPORTED_FORMATS else 422


def decode(upload: Upload, max_pixels: int) -> LoadedImage:
    """The uploaded image, loaded as the CLI loads files; UploadError (413/415/422) with the loader's words."""
    try:
        return load_image(upload.data, name=upload.name, max_pixels=max_pixels)
    except ImageLoadError as exc:
        raise UploadError(image_error_status(upload.data, exc), str(exc), image=upload.name) from exc


__all__ = ["FIELD", "Upload", "UploadError", "decode", "image_error_status", "read_upload", "upload_name"]
