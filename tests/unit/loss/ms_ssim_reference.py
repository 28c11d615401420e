"""Fixture values for tests/unit/loss/test_ms_ssim.cpp, from the pytorch_msssim package.

Run once with /usr/bin/python3 (torch 1.13, pytorch_msssim 1.0.0 from PyPI); the printed numbers
are embedded in the C++ test. The images are closed-form functions of the pixel index, computed
in double and rounded to float32, so the C++ test rebuilds them exactly (synthetic_pair there).
Gradients are those of the loss 1 - MS-SSIM with respect to X, from torch's autograd.
"""
import math

import numpy as np
import pytorch_msssim
import torch

STANDARD = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def synthetic_pair(n, c, h, w):
    x = np.empty((n, c, h, w), dtype=np.float64)
    y = np.empty_like(x)
    for a in range(n):
        for b in range(c):
            for i in range(h):
                for j in range(w):
                    v = 0.5 + 0.3 * math.sin(0.31 * i + 0.17 * j + 1.3 * b + 0.7 * a) \
                        + 0.15 * math.cos(0.023 * i * j + 0.5 * b)
                    u = v + 0.2 * math.sin(0.9 * i - 0.45 * j + b) * math.cos(0.13 * j + a)
                    x[a, b, i, j] = min(1.0, max(0.0, v))
                    y[a, b, i, j] = min(1.0, max(0.0, u))
    return (torch.tensor(x.astype(np.float32), requires_grad=True), torch.tensor(y.astype(np.float32)))


def report(label, value, x, coords):
    loss = 1 - value
    loss.backward()
    print(f"{label}: value {value.item():.9g}")
    for co in coords:
        print(f"  grad{list(co)} = {x.grad[co].item():.9g}")


coords = [(0, 0, 0, 0), (0, 1, 17, 33), (0, 2, 175, 180), (0, 0, 88, 91), (0, 2, 5, 170)]
x, y = synthetic_pair(1, 3, 176, 181)
report("ms_ssim 5 levels 1x3x176x181", pytorch_msssim.ms_ssim(x, y, data_range=1.0), x, coords)

w3 = [v / sum(STANDARD[:3]) for v in STANDARD[:3]]
coords = [(0, 0, 0, 0), (1, 0, 179, 162), (1, 0, 90, 81), (0, 0, 33, 2)]
x, y = synthetic_pair(2, 1, 180, 163)
report("ms_ssim 3 levels renormalised 2x1x180x163", pytorch_msssim.ms_ssim(x, y, data_range=1.0, weights=w3), x, coords)

coords = [(0, 0, 0, 0), (0, 1, 22, 29), (0, 1, 11, 14)]
x, y = synthetic_pair(1, 2, 23, 30)
report("ssim 1x2x23x30", pytorch_msssim.ssim(x, y, data_range=1.0), x, coords)

coords = [(0, 0, 0, 0), (0, 0, 30, 40)]
x, y = synthetic_pair(1, 1, 47, 52)
report("ssim sigma 2 window 7 K2 0.05 1x1x47x52",
       pytorch_msssim.ssim(x, y, data_range=1.0, win_size=7, win_sigma=2.0, K=(0.01, 0.05)), x, coords)
