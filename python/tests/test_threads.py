"""The GIL is released while tessel works: another Python thread runs during a tessel call."""
import sys
import threading

import numpy as np
import pytest

import tessel
from conftest import scene

STEPS = 2000  # pure-Python iterations the other thread must complete during one tessel call


def _other_thread_steps_during(call):
    """Runs call() on this thread while a second thread waits to count STEPS iterations of a
    pure-Python loop; returns how many it had counted when call() returned.

    The switch interval is raised to 100 s for the measurement, so this thread never hands the
    GIL over on its own: the second thread, woken just before the call, can run only while
    call() has released the GIL. If the GIL were held throughout, the count would be exactly 0
    whatever the machine's speed or load."""
    go = threading.Event()
    count = [0]

    def counter():
        go.wait()
        for _ in range(STEPS):
            count[0] += 1

    t = threading.Thread(target=counter)
    before = sys.getswitchinterval()
    t.start()
    sys.setswitchinterval(100.0)
    try:
        go.set()
        call()
        seen = count[0]
    finally:
        sys.setswitchinterval(before)
        t.join()
    return seen


# Inputs that the Python layer passes on as they are (uint8 or int32, C-contiguous): numpy
# releases the GIL in some copies and casts, which would let the other thread run outside tessel.
IMAGE = np.ascontiguousarray(np.tile(scene(96, 128), (4, 4, 1)))  # 384 x 512 x 3 uint8: calls of 0.05-0.3 s
SEG = np.ascontiguousarray(IMAGE[:, :, 0] // 32, dtype=np.int32)
GT = np.ascontiguousarray(IMAGE[:, :, 1] // 32, dtype=np.int32)


@pytest.mark.parametrize("name, call", [
    ("slic", lambda: tessel.slic(IMAGE, n_segments=400, max_num_iter=20, backend="cpu_serial")),
    ("segment", lambda: tessel.segment(IMAGE, method="felzenszwalb", backend="cpu_serial", progress=False)),
    ("metrics", lambda: tessel.metrics.boundary_displacement_error(SEG, [GT])),
])
def test_another_thread_runs_during_a_tessel_call(name, call):
    # The other thread needs a moment of CPU while the call runs; on a machine so loaded that it
    # got none within a whole call, a second and third try give it more chances. A held GIL
    # fails every try.
    for _ in range(3):
        seen = _other_thread_steps_during(call)
        if seen == STEPS:
            break
    assert seen == STEPS, f"{name}: the other thread counted {seen} of {STEPS} steps during the call"
