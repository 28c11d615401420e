"""Input checks shared by every tessel function: what numpy arrays tessel accepts, and the
conversion to the C-contiguous layout the compiled core reads."""
import numpy as np


def as_image(image, where, *, allow_float=True):
    """An H x W x C array (H x W is taken as one channel) as C-contiguous uint8 or float32.

    Raises ValueError for a wrong dtype or rank, an empty image, or non-finite values.
    """
    a = np.asarray(image)
    if a.dtype == np.bool_ or not (a.dtype == np.uint8 or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{where}: image must be uint8 or floating point, got dtype {a.dtype}")
    if not allow_float and a.dtype != np.uint8:
        raise ValueError(f"{where}: image must be uint8, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, np.newaxis]
    if a.ndim != 3:
        raise ValueError(f"{where}: image must be H x W or H x W x C, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{where}: image is empty (shape {a.shape})")
    if a.dtype != np.uint8:
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: image has NaN or infinite values")
        a = a.astype(np.float32, copy=False)
    return np.ascontiguousarray(a)


def as_labels(labels, where, name="labels"):
    """An H x W integer array as C-contiguous int32 (ValueError otherwise)."""
    a = np.asarray(labels)
    if a.ndim != 2:
        raise ValueError(f"{where}: {name} must be an H x W array, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{where}: {name} is empty (shape {a.shape})")
    if a.dtype == np.bool_:
        a = a.astype(np.int32)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{where}: {name} must hold integers, got dtype {a.dtype}")
    if a.dtype != np.int32:
        info = np.iinfo(np.int32)
        if a.min() < info.min or a.max() > info.max:
            raise ValueError(f"{where}: {name} has values outside the 32-bit range")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)
