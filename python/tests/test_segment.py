"""tessel.segment: every preset, its options, the report, progress and interruption."""
import os
import signal

import numpy as np
import pytest

import tessel
from conftest import scene

# Settings that keep each run to a fraction of a second on a 48 x 64 image.
FAST = {
    "kim2020": {"max_iter": 2, "channels": 8},
    "kanezaki2018": {"max_iter": 2, "channels": 8, "n_segments": 50},
    "azad2025": {"max_iter": 2, "channels": 8},
    "grapl": {"rounds": 1, "grid": 8, "k0": 4},
    "slic": {"n_segments": 20},
    "felzenszwalb": {"scale": 50},
    "dsc": {"untrained_superae": True, "max_iter": 2, "superpixel_count": 20},
    "picnet": {"max_iter": 2, "channels": 8, "fem_channels": 4, "n_segments": 50},
}


def test_every_method_is_listed():
    names = [m["name"] for m in tessel.methods()]
    assert set(FAST) | {"unseggnet"} == set(names)


@pytest.mark.parametrize("method", sorted(FAST))
def test_every_preset_runs_with_its_options(method):
    img = scene()
    labels, report = tessel.segment(img, method=method, seed=5, progress=False, return_report=True, **FAST[method])
    assert labels.dtype == np.int32 and labels.shape == img.shape[:2]
    assert report["method"] == method and report["seed"] == 5
    assert report["width"] == 64 and report["height"] == 48
    assert report["segments"] == len(np.unique(labels))
    for k, v in FAST[method].items():
        assert report["parameters"][k] == v
    assert report["seconds"]["total"] > 0
    assert tessel.last_report() is report


@pytest.mark.parametrize("method", sorted(FAST))
def test_every_preset_runs_on_cpu_serial(method):
    labels, report = tessel.segment(scene(), method=method, seed=2, backend="cpu_serial", progress=False,
                                    return_report=True, **FAST[method])
    assert report["backend"] == "cpu_serial" and labels.shape == (48, 64)


# The methods whose C++ tests assert bitwise the same labels on cpu_serial and cpu_omp
# (tests/unit/methods/test_grapl.cpp, tests/unit/superpixel); the others agree only up to float
# rounding of their parallel reductions.
@pytest.mark.parametrize("method", ["grapl", "slic", "felzenszwalb"])
def test_cpu_serial_and_cpu_omp_give_the_same_labels(method):
    img = scene()
    serial, rs = tessel.segment(img, method=method, seed=3, backend="cpu_serial", progress=False, return_report=True,
                                **FAST[method])
    omp, ro = tessel.segment(img, method=method, seed=3, backend="cpu_omp", threads=2, progress=False,
                             return_report=True, **FAST[method])
    assert (rs["backend"], ro["backend"], ro["threads"]) == ("cpu_serial", "cpu_omp", 2)
    assert len(np.unique(serial)) > 1
    np.testing.assert_array_equal(serial, omp)


def test_backends_lists_the_cpu_backends():
    assert tessel.backends() == ("cpu_omp", "cpu_serial")


def test_slic_preset_equals_tessel_slic():
    img = scene()
    np.testing.assert_array_equal(tessel.segment(img, method="slic", n_segments=30, compactness=5.0, progress=False),
                                  tessel.slic(img, n_segments=30, compactness=5.0, max_num_iter=10))


def test_same_seed_same_labels_and_views_accepted():
    img = scene()
    a = tessel.segment(img, method="kim2020", seed=1, progress=False, **FAST["kim2020"])
    b = tessel.segment(np.asfortranarray(img), method="kim2020", seed=1, progress=False, **FAST["kim2020"])
    np.testing.assert_array_equal(a, b)
    c = tessel.segment(img.astype(np.float64) / 255, method="kim2020", seed=1, progress=False, **FAST["kim2020"])
    np.testing.assert_array_equal(a, c)


def test_python_reserved_word_options_take_an_underscore():
    labels, report = tessel.segment(scene(), method="grapl", progress=False, return_report=True, lambda_=10.0,
                                    **FAST["grapl"])
    assert report["parameters"]["lambda_"] == 10.0


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "nosuch"}, "unknown method 'nosuch'; the methods are: kim2020"),
    ({"max_iter": -3}, "max_iter=-3 is out of range for kim2020: must be >= 0"),
    ({"lr": float("nan")}, "lr must be finite"),
    ({"max_iter": 2.5}, "max_iter must be an integer"),
    ({"lambda_": 3.0}, "'lambda_' is not an option of kim2020 \\(it is one of grapl\\)"),
    ({"bogus": 1}, "'bogus' is not an option of kim2020; its options are: channels"),
    ({"bgr_input": 1}, "bgr_input is an on/off option"),
    ({"method": "grapl", "solver": "magic"}, "solver='magic' is not one of"),
    ({"seed": -1}, "seed must be an integer"),
    ({"threads": 0}, "threads must be"),
    ({"backend": "gpu"}, "backend must be one of cpu_omp, cpu_serial, got 'gpu'"),
    ({"backend": None}, "backend must be one of"),
    ({"backend": "cuda"}, "backend 'cuda' is not available: this tessel module was built without CUDA"),
])
def test_bad_options_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tessel.segment(scene(16, 16), progress=False, **kwargs)


def test_float_image_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        tessel.segment(np.full((8, 8, 3), 2.0), method="slic", progress=False)


def test_missing_files_raise_file_not_found():
    with pytest.raises(FileNotFoundError, match="model: no such file"):
        tessel.segment(scene(), method="dsc", model="/nonexistent/model.bin", progress=False)
    with pytest.raises(FileNotFoundError, match="scribble"):
        tessel.segment(scene(), method="kim2020", scribble="/nonexistent.png", progress=False)


def test_scribble_as_array():
    img = scene()
    scribble = np.full(img.shape[:2], 255, np.int32)  # 255 = unlabelled (kim2020's scribble mode)
    scribble[2:10, 2:10] = 0
    scribble[38:46, 54:62] = 1
    labels, report = tessel.segment(img, method="kim2020", scribble=scribble, progress=False, return_report=True,
                                    **FAST["kim2020"])
    assert report["parameters"]["scribble"] == "<label map>"
    assert labels.shape == img.shape[:2]
    with pytest.raises(ValueError, match="scribble must be an H x W integer array"):
        tessel.segment(img, method="kim2020", scribble=np.zeros((4, 4, 2), np.int32), progress=False)


def test_progress_callback_sees_every_iteration():
    calls = []
    tessel.segment(scene(), method="kim2020", progress=lambda *a: calls.append(a), max_iter=3, channels=8,
                   min_labels=0)
    steps = [c[1] for c in calls if c[0] == calls[-1][0]]
    assert steps[-1] == calls[-1][2]
    assert len(steps) >= 3
    assert all(isinstance(c[0], str) and isinstance(c[3], str) for c in calls)


def test_exception_in_progress_stops_the_run():
    class Stop(Exception):
        pass

    def progress(stage, step, total, message):
        if step >= 2:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        tessel.segment(scene(), method="kim2020", progress=progress, max_iter=1000, channels=8, min_labels=0)


def test_sigint_stops_a_long_run_with_keyboard_interrupt():
    seen = []

    def progress(stage, step, total, message):
        seen.append(step)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would; Python raises at the next check

    with pytest.raises(KeyboardInterrupt):
        tessel.segment(scene(), method="kim2020", progress=progress, max_iter=1000, channels=8, min_labels=0)
    assert max(seen) < 10  # stopped between iterations, long before max_iter


def test_default_progress_is_a_tqdm_bar_on_a_terminal(monkeypatch, capsys):
    pytest.importorskip("tqdm", reason="tqdm is not installed: no default progress bar to test")
    import io

    from tessel import _segment

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    tessel.segment(scene(), method="kim2020", max_iter=3, channels=8, min_labels=0)
    assert "3/3" in term.getvalue()  # tqdm's counter reached the last iteration
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal: no bar
    assert _segment._default_progress() is None


def test_unseggnet_without_its_files_says_what_it_needs():
    # unseggnet needs DINO weights or precomputed features, which the unit tests do not have.
    with pytest.raises(ValueError, match="needs a ViT weights file"):
        tessel.segment(scene(), method="unseggnet", progress=False)
