"""tessel.io: the image reader of tessel's C++ library (what tessel-segment decodes)."""
import os

import numpy as np

from . import _native


def read_image(path, channels=3):
    """The image at `path` as an H x W x C uint8 array.

    channels: 3 (RGB, the default), 1, 4, or 0 to keep the file's own channel count.
    Raises FileNotFoundError for a missing file, OSError for a truncated or unsupported one.
    """
    if channels not in (0, 1, 3, 4):
        raise ValueError(f"tessel.io.read_image: channels must be 0, 1, 3 or 4, got {channels!r}")
    arr = _native.read_image(os.fspath(path), int(channels))
    return np.asarray(arr)
