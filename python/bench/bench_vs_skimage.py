"""tessel.slic / tessel.felzenszwalb against skimage.segmentation in the same process, and the
overhead of one binding call on a 64 x 64 image. Prints one JSON object per line, as bench/ does:

    PYTHONPATH=build/python /usr/bin/python3 python/bench/bench_vs_skimage.py [--image photo.jpg] [--repeat 5]
Without --image, a 481 x 321 synthetic photo-like image (BSDS size) made in code is used.
"""
import argparse
import json
import os
import time

import numpy as np
from skimage import segmentation

import tessel


def synthetic(height=321, width=481, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    img = np.stack([128 + 100 * np.sin(xx / 37.0), 128 + 100 * np.cos(yy / 23.0), 128 + 60 * np.sin((xx + yy) / 50.0)],
                   axis=-1)
    img += rng.normal(0, 8, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def best_of(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    img = tessel.io.read_image(args.image) if args.image else synthetic()
    cases = {
        "slic": (lambda: tessel.slic(img, n_segments=300), lambda: segmentation.slic(img, n_segments=300)),
        "felzenszwalb": (lambda: tessel.felzenszwalb(img, scale=100, sigma=0.5, min_size=50),
                         lambda: segmentation.felzenszwalb(img, scale=100, sigma=0.5, min_size=50)),
    }
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    for name, (ours, theirs) in cases.items():
        t_ours, t_theirs = best_of(ours, args.repeat), best_of(theirs, args.repeat)
        print(json.dumps({"bench": f"python_{name}", "width": img.shape[1], "height": img.shape[0],
                          "threads": threads, "seconds": t_ours, "skimage_seconds": t_theirs,
                          "ratio_to_skimage": t_ours / t_theirs}))
    small = synthetic(64, 64)
    calls = 200
    t = best_of(lambda: [tessel.felzenszwalb(small, min_size=0) for _ in range(calls)], 3) / calls
    print(json.dumps({"bench": "python_call_64x64_felzenszwalb", "seconds": t}))


if __name__ == "__main__":
    main()
