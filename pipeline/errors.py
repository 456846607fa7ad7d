"""The project's own error types: every failure a user can cause is one of these."""


class BusiError(Exception):
    """Base class for errors with a message meant for the user."""


class DatasetError(BusiError):
    """The dataset folder is missing, has the wrong layout, or holds a bad file."""


class ImageLoadError(BusiError):
    """An input image cannot be read or is outside what the models accept."""


class ImageTooLargeError(ImageLoadError):
    """An input image has more pixels than the limit (checked from its header, before decoding)."""


class ModelLoadError(BusiError):
    """A model file is missing or cannot be loaded."""
