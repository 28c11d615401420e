"""Bad arrays and parameters give ValueError with a message naming the problem."""
import gc
import resource
import sys

import numpy as np
import pytest

import tessel
from conftest import scene


@pytest.mark.parametrize("fn", [tessel.slic, tessel.felzenszwalb,
                                lambda a: tessel.segment(a, method="slic")])
def test_bad_arrays(fn):
    with pytest.raises(ValueError, match="dtype int64"):
        fn(np.zeros((8, 8, 3), np.int64))
    with pytest.raises(ValueError, match="dtype bool"):
        fn(np.zeros((8, 8, 3), bool))
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 8, 3), np.uint8))
    bad = np.full((8, 8, 3), 0.5, np.float32)
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)


def test_bad_parameters():
    img = scene(16, 16)
    with pytest.raises(ValueError, match="tessel::slic"):
        tessel.slic(img, n_segments=0)
    with pytest.raises(ValueError, match="scale"):
        tessel.felzenszwalb(img, scale=-1)
    with pytest.raises(ValueError, match="threads"):
        tessel.slic(img, threads=0)
    with pytest.raises(ValueError, match="backend"):
        tessel.felzenszwalb(img, backend="gpu")
    with pytest.raises(ValueError, match="built without CUDA"):
        tessel.slic(img, backend="cuda")
    with pytest.raises(ValueError, match="spacing has 4 elements"):
        tessel.slic(img, spacing=[1, 2, 3, 4])
    with pytest.raises(TypeError, match="spacing must be None or iterable"):
        tessel.slic(img, spacing=2.0)
    with pytest.raises(ValueError, match="spacing must hold positive finite numbers"):
        tessel.slic(img, spacing=[1, -2])
    with pytest.raises(NotImplementedError, match="per-axis sigma is not implemented"):
        tessel.slic(img, sigma=[1, 2])
    with pytest.raises(ValueError, match="sigma must be a number"):
        tessel.slic(img, sigma="1")
    with pytest.raises(ValueError, match="image and mask should have the same shape"):
        tessel.slic(img, mask=np.ones((16, 15), bool))
    with pytest.raises(ValueError, match="the mask has no pixel inside"):
        tessel.slic(img, mask=np.zeros((16, 16), bool))
    with pytest.raises(ValueError, match="coincide"):
        tessel.slic(img, n_segments=1, mask=np.ones((16, 16), bool))


def test_memory_and_reference_counts_stay_flat():
    img = scene(32, 32)
    before = sys.getrefcount(img)
    # cpu_serial: the test is about the binding, and tiny OpenMP regions are slow on a busy machine.
    for _ in range(100):  # warm-up: allocator pools reach their steady size
        tessel.slic(img, n_segments=10, backend="cpu_serial")
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(1000):
        labels = tessel.slic(img, n_segments=10, backend="cpu_serial")
        if i % 5 == 0:
            tessel.metrics.probabilistic_rand_index(labels, [labels])
    del labels
    gc.collect()
    assert sys.getrefcount(img) == before
    # ru_maxrss is in KiB; a leak of one 32x32 label map per call would add 4 MB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 2048
