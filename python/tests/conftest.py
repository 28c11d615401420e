"""Synthetic test images made in code (no data files needed)."""
import numpy as np
import pytest


def scene(height=48, width=64, seed=3):
    """Four flat colour blocks, a disc and mild noise: a photo-like image with clear regions."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float64)
    img[: height // 2, : width // 2] = (200, 40, 40)
    img[: height // 2, width // 2:] = (40, 180, 60)
    img[height // 2:, : width // 2] = (30, 60, 200)
    img[height // 2:, width // 2:] = (220, 220, 90)
    yy, xx = np.mgrid[:height, :width]
    img[(yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 5) ** 2] = (250, 250, 250)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.fixture
def rgb():
    return scene()
