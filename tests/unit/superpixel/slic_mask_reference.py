"""Fixture for tests/unit/superpixel/test_slic_mask.cpp: scikit-image's SLIC with `mask=` and
`spacing=` on tessel::testing::gradient_scene (tests/unit/superpixel/scene.hpp, rebuilt here
byte for byte), and the pieces of its mask seeding (numpy's RandomState(123).permutation and
skimage's _get_mask_centroids).

Run with Debian's scikit-image 0.19.3 (numpy 1.24, scipy 1.10) and paste the output into the test:
    /usr/bin/python3 tests/unit/superpixel/slic_mask_reference.py
"""
import numpy as np
import skimage
from skimage.segmentation import slic
from skimage.segmentation.slic_superpixels import _get_mask_centroids


def gradient_scene(w, h):
    img = np.zeros((h, w, 3), np.uint8)
    m = min(w, h)
    for y in range(h):
        for x in range(w):
            rgb = [x * 255 // (w - 1), y * 255 // (h - 1), 128]
            dx, dy = 10 * x - 3 * w, 10 * y - 4 * h
            if dx * dx + dy * dy < 4 * m * m:
                rgb = [220, 50, 40]
            if 6 * w <= 10 * x < 9 * w and 5 * h <= 10 * y < 9 * h:
                rgb = [60, 200, 80]
            for c in range(3):
                hsh = ((x * 73856093) ^ (y * 19349663) ^ (c * 83492791)) & 0xFFFFFFFF
                img[y, x, c] = min(max(rgb[c] + hsh % 21 - 10, 0), 255)
    return img


def ellipse_mask(w, h):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h * 0.55) / (h * 0.42)) ** 2 + ((xx - w * 0.45) / (w * 0.4)) ** 2 < 1


def emit(name, arr):
    flat = ", ".join(str(int(v)) for v in np.asarray(arr).ravel())
    print(f"const std::vector<int> {name} = {{{flat}}};")


def main():
    print(f"// scikit-image {skimage.__version__}, numpy {np.__version__}")
    emit("permutation_10", np.random.RandomState(123).permutation(10))
    rs = np.random.RandomState(123)
    rs.permutation(7)
    emit("second_permutation_12", rs.permutation(12))

    img, mask = gradient_scene(32, 24), ellipse_mask(32, 24)
    print(f"// mask pixels: {int(mask.sum())}")
    centroids, steps = _get_mask_centroids(mask[np.newaxis].view(np.uint8), 9, True)
    print("const std::vector<double> seeds_9_y = {" + ", ".join(repr(float(v)) for v in centroids[:, 1]) + "};")
    print("const std::vector<double> seeds_9_x = {" + ", ".join(repr(float(v)) for v in centroids[:, 2]) + "};")
    print(f"const double seeds_9_step = {float(max(steps))!r};")

    # n = 3: 300 k-means samples out of 405 mask pixels (the second permutation is used).
    centroids, steps = _get_mask_centroids(mask[np.newaxis].view(np.uint8), 3, True)
    print("const std::vector<double> seeds_3_y = {" + ", ".join(repr(float(v)) for v in centroids[:, 1]) + "};")
    print("const std::vector<double> seeds_3_x = {" + ", ".join(repr(float(v)) for v in centroids[:, 2]) + "};")
    print(f"const double seeds_3_step = {float(max(steps))!r};")

    emit("mask_n9", slic(img, n_segments=9, mask=mask))
    emit("mask_n20_zero_start0_noconn",
         slic(img, n_segments=20, mask=mask, slic_zero=True, start_label=0, enforce_connectivity=False,
              compactness=5))
    emit("spacing_2_1_sigma1", slic(img, n_segments=16, spacing=[2, 1], sigma=1))
    emit("mask_spacing_1_3", slic(img, n_segments=8, mask=mask, spacing=[1, 3], max_num_iter=4))


if __name__ == "__main__":
    main()
