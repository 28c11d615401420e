"""segment(), slic() and felzenszwalb(): tessel's methods with scikit-image's conventions."""
import sys
import threading
import warnings
from collections.abc import Iterable

import numpy as np

from . import _native
from ._arrays import as_image

_state = threading.local()


def _check_threads(threads, where):
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 1024:
        raise ValueError(f"{where}: threads must be an integer in [1, 1024] or None, got {threads!r}")
    return int(threads)


def backends():
    """The backends this module can run on: ("cpu_omp", "cpu_serial"). "cuda" is never among them
    (the module is compiled by the host compiler; tessel's cuda backend needs nvcc)."""
    return tuple(_native.backends)


def _check_backend(backend, where):
    available = backends()
    if backend == "cuda" and backend not in available:
        raise ValueError(f"{where}: backend 'cuda' is not available: this tessel module was built without "
                         f"CUDA (available: {', '.join(available)}); tessel's CUDA backend is used from C++ "
                         "compiled by nvcc (docs/cuda.md)")
    if not isinstance(backend, str) or backend not in available:
        raise ValueError(f"{where}: backend must be one of {', '.join(available)}, got {backend!r}")
    return backend


def _default_progress():
    """A tqdm bar per stage when tqdm is installed and stderr is a terminal; otherwise none."""
    try:
        isatty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        isatty = False
    if not isatty:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bars = {}

    def update(stage, step, total, message):
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, leave=False)
        bar.n = step
        if message:
            bar.set_postfix_str(message, refresh=False)
        bar.refresh()
        if step >= total:
            bar.close()

    return update


def methods():
    """Every method segment() runs: a list of {name, summary, options}; each option has its
    keyword name, kind (int, float, flag, choice, label_map, path), default, range or choices
    and help."""
    return _native.methods()


def last_report():
    """The report of this thread's last segment() call (as tessel-segment's JSON report: method,
    seed, backend, threads, parameters, width, height, segments, iterations, seconds, values),
    or None before the first call."""
    return getattr(_state, "report", None)


def segment(image, method="kim2020", seed=0, *, threads=None, backend="cpu_omp", progress=None,
            return_report=False, **options):
    """Segments `image` (H x W x 3, uint8 or float in [0, 1]; H x W gray is repeated to 3
    channels) with one of tessel's methods and returns H x W int32 labels.

    method: a name from methods(); options: that method's options, named as tessel-segment's
    with '_' for '-' (e.g. max_iter=100). Wrong names, types and out-of-range values raise
    ValueError. seed fixes every random choice. threads: OpenMP threads for this call (None:
    OpenMP's default). backend: "cpu_omp" (OpenMP threads) or "cpu_serial" (one thread, tessel's
    reference code path); see backends(). progress: a callable(stage, step, total, message),
    False for none, None for a tqdm bar when tqdm is installed and stderr is a terminal. Ctrl-C stops the run between
    iterations with KeyboardInterrupt. return_report=True returns (labels, report); the report is
    also available from last_report().
    """
    where = "tessel.segment"
    if not isinstance(method, str):
        raise ValueError(f"{where}: method must be a string, got {method!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"{where}: seed must be an integer in [0, 2**64), got {seed!r}")
    threads = _check_threads(threads, where)
    backend = _check_backend(backend, where)
    a = as_image(image, where)
    if a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"{where}: a floating-point image must hold values in [0, 1] "
                             f"(got [{a.min()}, {a.max()}])")
        a = np.ascontiguousarray(np.rint(a * 255.0).astype(np.uint8))
    if a.shape[2] == 1:
        a = np.ascontiguousarray(np.repeat(a, 3, axis=2))
    if progress is None:
        progress = _default_progress()
    elif progress is False:
        progress = None
    elif not callable(progress):
        raise ValueError(f"{where}: progress must be callable, False or None, got {progress!r}")
    labels, report = _native.segment(a, method, int(seed), options, threads, progress, backend)
    _state.report = report
    return (labels, report) if return_report else labels


def _prepare(image, where, channel_axis):
    a = np.asarray(image)
    if channel_axis is None:
        if a.ndim != 2:
            raise ValueError(f"{where}: channel_axis=None needs an H x W image, got shape {a.shape}")
    elif a.ndim == 3:
        a = np.moveaxis(a, channel_axis, -1)
    elif a.ndim != 2:
        raise ValueError(f"{where}: image must be H x W or H x W x C, got shape {a.shape}")
    return as_image(a, where)


def _slic_spacing(spacing, where):
    """skimage's spacing of a 2-D image as (row, column) weights."""
    if spacing is None:
        return 1.0, 1.0
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, Iterable):
        raise TypeError("spacing must be None or iterable.")
    s = np.asarray(spacing, dtype=np.float64).ravel()
    if s.size == 3:  # skimage 0.19 takes (z, y, x) for a 2-D image with this warning
        warnings.warn("Input image is 2D: spacing number of elements must be 2. In the future, a ValueError "
                      "will be raised.", FutureWarning, stacklevel=3)
        s = s[1:]
    elif s.size != 2:
        raise ValueError(f"{where}: Input image is 2D, but spacing has {s.size} elements (expected 2).")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"{where}: spacing must hold positive finite numbers, got {spacing!r}")
    return float(s[0]), float(s[1])


def slic(image, n_segments=100, compactness=10.0, max_num_iter=10, sigma=0, spacing=None, convert2lab=None,
         enforce_connectivity=True, min_size_factor=0.5, max_size_factor=3, slic_zero=False, start_label=1,
         mask=None, *, channel_axis=-1, threads=None, backend="cpu_omp"):
    """SLIC superpixels with the parameters, defaults and results of
    skimage.segmentation.slic (scikit-image 0.19). uint8 images are divided by 255; float images
    are taken as they are; the image is then rescaled to [0, 1] as scikit-image does.
    convert2lab=None converts 3-channel images to Lab. spacing: (row, column) weights of the
    spatial distance (a scalar sigma is divided by them). mask: H x W, superpixels only where it
    is true (maskSLIC: seeds spread over the mask by k-means); other pixels get start_label - 1.
    sigma must be a number (a per-axis sequence raises NotImplementedError). Returns H x W int32
    labels."""
    where = "tessel.slic"
    sy, sx = _slic_spacing(spacing, where)
    if not isinstance(sigma, (str, bytes)) and np.ndim(sigma) > 0:
        raise NotImplementedError(f"{where}: a per-axis sigma is not implemented (skimage accepts one); pass a "
                                  f"number, which is divided by the spacing as skimage does, got {sigma!r}")
    if isinstance(sigma, np.ndarray):
        sigma = sigma.item()
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: sigma must be a number, got {sigma!r}")
    a = _prepare(image, where, channel_axis)
    if convert2lab is None:
        convert2lab = a.shape[2] == 3
    elif convert2lab and a.shape[2] != 3:
        raise ValueError(f"{where}: convert2lab needs 3 channels, got {a.shape[2]}")
    for name, value in (("n_segments", n_segments), ("max_num_iter", max_num_iter), ("start_label", start_label)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
    if start_label not in (0, 1):
        raise ValueError(f"{where}: start_label must be 0 or 1, got {start_label!r}")
    inside = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != a.shape[:2]:
            raise ValueError(f"{where}: image and mask should have the same shape (image {a.shape[:2]}, "
                             f"mask {m.shape})")
        inside = np.ascontiguousarray(m, dtype=bool).astype(np.int32)
        if not inside.any():
            raise ValueError(f"{where}: the mask has no pixel inside")
    # skimage's k-means for the mask seeds samples 10 ** (spatial dimensions) pixels per seed; with
    # channel_axis=None it counts the image as a volume (3 dimensions).
    per_seed = 1000 if channel_axis is None else 100
    fn = _native.slic_u8 if a.dtype == np.uint8 else _native.slic_f32
    return fn(a, int(n_segments), float(compactness), int(max_num_iter), float(sigma), bool(enforce_connectivity),
              float(min_size_factor), float(max_size_factor), bool(slic_zero), int(start_label), bool(convert2lab),
              sy, sx, inside, per_seed, _check_backend(backend, where), _check_threads(threads, where))


def felzenszwalb(image, scale=1, sigma=0.8, min_size=20, *, channel_axis=-1, threads=None, backend="cpu_omp"):
    """Felzenszwalb-Huttenlocher segmentation with the parameters, defaults and results of
    skimage.segmentation.felzenszwalb. uint8 images are divided by 255, float images used as
    they are. Returns H x W int32 labels 0..K-1."""
    where = "tessel.felzenszwalb"
    a = _prepare(image, where, channel_axis)
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)):
        raise ValueError(f"{where}: min_size must be an integer, got {min_size!r}")
    fn = _native.felzenszwalb_u8 if a.dtype == np.uint8 else _native.felzenszwalb_f32
    return fn(a, float(scale), float(sigma), int(min_size), _check_backend(backend, where),
              _check_threads(threads, where))
