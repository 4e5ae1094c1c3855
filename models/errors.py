"""Domain errors raised by the models package, with messages that say what to do."""


class ModelError(Exception):
    """Base class for every error raised by the models package."""


class ModelNotFoundError(ModelError, LookupError):
    """A model (weights + spec) or an architecture does not exist."""


class ModelIntegrityError(ModelError):
    """Saved weights do not match their spec (sha256, tensors), or the spec JSON is invalid."""


class ImageError(ModelError, ValueError):
    """Base class for images that cannot be used (maps to HTTP 422)."""


class ImageDecodeError(ImageError):
    """Not an image, truncated, or an unsupported format or mode."""


class ImageTooLargeError(ImageError):
    """Over the byte or pixel limit (maps to HTTP 413)."""


class TrainingConfigError(ModelError, ValueError):
    """Invalid training options, raised before any training starts."""
