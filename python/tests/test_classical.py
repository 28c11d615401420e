"""tessel.slic and tessel.felzenszwalb: scikit-image's parameters and results."""
import numpy as np
import pytest

import tessel
from conftest import scene

skimage_segmentation = pytest.importorskip("skimage.segmentation", reason="scikit-image is not installed: "
                                           "the comparisons with skimage are skipped")


@pytest.mark.parametrize("kwargs", [
    {},
    {"n_segments": 37, "compactness": 4.5, "max_num_iter": 5, "sigma": 1.2},
    {"n_segments": 20, "slic_zero": True, "start_label": 0},
    {"n_segments": 60, "enforce_connectivity": False},
    {"n_segments": 30, "min_size_factor": 0.1, "max_size_factor": 1.5, "convert2lab": False},
])
def test_slic_equals_skimage_on_uint8(kwargs):
    img = scene(41, 57)
    ours = tessel.slic(img, **kwargs)
    theirs = skimage_segmentation.slic(img, **kwargs)
    assert ours.dtype == np.int32 and ours.shape == img.shape[:2]
    np.testing.assert_array_equal(ours, theirs)


def test_slic_equals_skimage_on_float_gray_and_views():
    img = scene(50, 40).astype(np.float64) / 255.0
    gray = img.mean(axis=2)
    np.testing.assert_array_equal(tessel.slic(gray, n_segments=25, channel_axis=None),
                                  skimage_segmentation.slic(gray, n_segments=25, channel_axis=None))
    view = img[::2, ::-1]  # not C-contiguous
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(tessel.slic(view, n_segments=12), skimage_segmentation.slic(view, n_segments=12))
    chw = np.ascontiguousarray(np.moveaxis(img, -1, 0))
    np.testing.assert_array_equal(tessel.slic(chw, n_segments=18, channel_axis=0),
                                  skimage_segmentation.slic(chw, n_segments=18, channel_axis=0))


@pytest.mark.parametrize("kwargs", [{}, {"scale": 100, "sigma": 0.5, "min_size": 50}, {"scale": 3, "sigma": 0.3, "min_size": 0}])
def test_felzenszwalb_equals_skimage(kwargs):
    img = scene(45, 61)
    ours = tessel.felzenszwalb(img, **kwargs)
    np.testing.assert_array_equal(ours, skimage_segmentation.felzenszwalb(img, **kwargs))
    assert ours.dtype == np.int32
    flt = img[:, ::-1].astype(np.float32) / 255
    np.testing.assert_array_equal(tessel.felzenszwalb(flt, **kwargs), skimage_segmentation.felzenszwalb(flt, **kwargs))


def test_serial_backend_and_threads_give_the_same_labels():
    img = scene(40, 40)
    ref = tessel.slic(img, n_segments=30)
    np.testing.assert_array_equal(tessel.slic(img, n_segments=30, backend="cpu_serial"), ref)
    np.testing.assert_array_equal(tessel.slic(img, n_segments=30, threads=1), ref)
    np.testing.assert_array_equal(tessel.felzenszwalb(img, backend="cpu_serial"), tessel.felzenszwalb(img, threads=2))
