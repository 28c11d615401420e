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


def ellipse(h, w):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h * 0.55) / (h * 0.42)) ** 2 + ((xx - w * 0.45) / (w * 0.4)) ** 2 < 1


@pytest.mark.parametrize("kwargs", [
    {"n_segments": 20},
    {"n_segments": 5},  # 500 k-means samples out of the mask's pixels
    {"n_segments": 30, "slic_zero": True, "start_label": 0, "enforce_connectivity": False, "compactness": 4},
    {"n_segments": 12, "spacing": [1, 2.5], "sigma": 0.8, "max_num_iter": 6},
    {"n_segments": 400},  # more seeds than some windows hold: unreached pixels keep start_label - 1
])
def test_slic_with_a_mask_equals_skimage(kwargs):
    img = scene(41, 57)
    mask = ellipse(41, 57)
    ours = tessel.slic(img, mask=mask, **kwargs)
    np.testing.assert_array_equal(ours, skimage_segmentation.slic(img, mask=mask, **kwargs))
    start = kwargs.get("start_label", 1)
    assert (ours[~mask] == start - 1).all() and len(np.unique(ours[mask])) > 1


def test_slic_with_a_mask_on_gray_float_and_views_equals_skimage():
    img = scene(50, 40).astype(np.float64) / 255.0
    gray, mask = img.mean(axis=2), ellipse(50, 40)
    # channel_axis=None: skimage samples 1000 pixels per seed for the k-means, not 100
    for kwargs in ({"n_segments": 6, "channel_axis": None}, {"n_segments": 6}):
        np.testing.assert_array_equal(tessel.slic(gray, mask=mask, **kwargs),
                                      skimage_segmentation.slic(gray, mask=mask, **kwargs))
    view, vmask = img[::-1, ::2], mask[::-1, ::2].astype(np.uint8)  # a 0/1 mask of another dtype, not contiguous
    np.testing.assert_array_equal(tessel.slic(view, n_segments=9, mask=vmask),
                                  skimage_segmentation.slic(view, n_segments=9, mask=vmask))


@pytest.mark.parametrize("kwargs", [
    {"n_segments": 30, "spacing": [2, 1]},
    {"n_segments": 25, "spacing": (1, 0.5), "sigma": 1.5},
    {"n_segments": 40, "spacing": np.array([3.0, 1.0]), "slic_zero": True, "enforce_connectivity": False},
])
def test_slic_with_spacing_equals_skimage(kwargs):
    img = scene(41, 57)
    ours = tessel.slic(img, **kwargs)
    np.testing.assert_array_equal(ours, skimage_segmentation.slic(img, **kwargs))
    assert not np.array_equal(ours, tessel.slic(img, **{**kwargs, "spacing": None}))  # spacing changed something


def test_slic_spacing_of_three_elements_warns_as_skimage():
    img = scene(30, 30)
    with pytest.warns(FutureWarning, match="spacing number of elements must be 2"):
        ours = tessel.slic(img, n_segments=20, spacing=[7, 2, 1])
    with pytest.warns(FutureWarning):
        theirs = skimage_segmentation.slic(img, n_segments=20, spacing=[7, 2, 1])
    np.testing.assert_array_equal(ours, theirs)


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
    mask = ellipse(40, 40)
    np.testing.assert_array_equal(tessel.slic(img, n_segments=30, mask=mask, backend="cpu_serial"),
                                  tessel.slic(img, n_segments=30, mask=mask, threads=2))
