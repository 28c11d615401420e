"""tessel: unsupervised image segmentation at C++ speed, with scikit-image's conventions.

    import tessel
    image = tessel.io.read_image("photo.jpg")          # H x W x 3 uint8
    labels = tessel.segment(image, method="grapl")     # H x W int32
    superpixels = tessel.slic(image, n_segments=200)   # same result as skimage.segmentation.slic

Every method of tessel-segment is available through segment(); its options are the command-line
options with '_' for '-' (max_iter=, n_segments=...). tessel.methods() lists them.
"""
from . import io, metrics
from ._arrays import as_image
from ._native import __version__
from ._segment import backends, felzenszwalb, last_report, methods, segment, slic

__all__ = ["segment", "slic", "felzenszwalb", "methods", "backends", "last_report", "metrics", "io", "as_image", "__version__"]
