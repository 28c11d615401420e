"""tessel.metrics on small label maps whose scores are worked out by hand in the comments."""
import math

import numpy as np
import pytest

import tessel

# seg splits 4 pixels 2 + 2, gt 3 + 1.
SEG = np.array([[0, 0, 1, 1]])
GT = np.array([[0, 0, 0, 1]])


def test_rand_index():
    # 6 pixel pairs; seg and gt agree (same/same or different/different) on (0,1), (0,3), (1,3).
    assert tessel.metrics.probabilistic_rand_index(SEG, [GT]) == pytest.approx(0.5)
    assert tessel.metrics.probabilistic_rand_index(SEG, [GT, SEG]) == pytest.approx(0.75)
    assert tessel.metrics.probabilistic_rand_index(SEG, GT) == pytest.approx(0.5)  # one array = one GT


def test_variation_of_information():
    # H(seg) = 1 bit, H(gt) = H(3/4, 1/4), H(seg, gt) = H(1/2, 1/4, 1/4) = 1.5 bits.
    h_gt = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    vi, h_seg_given_gt, h_gt_given_seg = tessel.metrics.variation_of_information(SEG, GT)
    assert h_seg_given_gt == pytest.approx(1.5 - h_gt)
    assert h_gt_given_seg == pytest.approx(0.5)
    assert vi == pytest.approx(2.0 - h_gt)
    assert tessel.metrics.mean_variation_of_information(SEG, [GT, SEG]) == pytest.approx((2.0 - h_gt) / 2)
    nats = tessel.metrics.variation_of_information(SEG, GT, base=math.e)[0]
    assert nats == pytest.approx((2.0 - h_gt) * math.log(2))


def test_variation_of_information_equals_skimage():
    skm = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed")
    rng = np.random.default_rng(0)
    seg, gt = rng.integers(0, 5, (20, 30)), rng.integers(0, 3, (20, 30))
    # skimage: (H(image1 | image0), H(image0 | image1)) in bits; with image0 = gt, image1 = seg.
    h_seg_gt, h_gt_seg = skm.variation_of_information(gt, seg)
    vi, ours_seg_gt, ours_gt_seg = tessel.metrics.variation_of_information(seg, gt)
    assert ours_seg_gt == pytest.approx(h_seg_gt) and ours_gt_seg == pytest.approx(h_gt_seg)
    assert vi == pytest.approx(h_seg_gt + h_gt_seg)


def test_covering():
    # GT region {0,1,2}: best IoU 2/3 (seg 0); GT region {3}: 1/2 (seg 1); weights 3/4, 1/4.
    assert tessel.metrics.covering(SEG, GT) == pytest.approx(0.625)
    # seg regions by GT: {0,1} best 2/3, {2,3} best 1/2, weights 1/2 each.
    assert tessel.metrics.covering(SEG, GT, direction="seg_by_gt") == pytest.approx((2 / 3 + 0.5) / 2)
    with pytest.raises(ValueError, match="direction"):
        tessel.metrics.covering(SEG, GT, direction="both")


def test_hungarian_scores():
    s = tessel.metrics.hungarian_scores(SEG + 1, GT + 1)  # no ignore label 0 present
    assert s["accuracy"] == pytest.approx(0.75)  # seg 1 -> gt 1 (2 px), seg 2 -> gt 2 (1 px)
    assert s["iou_per_gt"] == pytest.approx([2 / 3, 1 / 2])
    assert s["miou_gt_classes"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_boundary_displacement_error():
    a = np.zeros((10, 10), np.int32)
    a[:, 5:] = 1
    assert tessel.metrics.boundary_displacement_error(a, [a]) == 0.0
    b = np.zeros((10, 10), np.int32)
    b[:, 7:] = 1
    assert tessel.metrics.boundary_displacement_error(a, [b]) > 0


def test_foreground_iou():
    pred, gt = np.array([[0, 1, 1, 0]]), np.array([[0, 1, 0, 0]])
    assert tessel.metrics.foreground_iou(pred, gt) == (pytest.approx(0.5), False)
    iou, flipped = tessel.metrics.foreground_iou(1 - pred, gt, polarity="oracle")
    assert flipped and iou == pytest.approx(0.5)


def test_bad_label_arrays():
    with pytest.raises(ValueError, match="differ in size"):
        tessel.metrics.covering(SEG, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integers"):
        tessel.metrics.covering(SEG.astype(float), GT)
    with pytest.raises(ValueError, match="H x W"):
        tessel.metrics.probabilistic_rand_index(SEG[0], [GT])
    with pytest.raises(ValueError, match="no ground truth"):
        tessel.metrics.probabilistic_rand_index(SEG, [])
    with pytest.raises(ValueError, match="32-bit"):
        tessel.metrics.covering(SEG.astype(np.int64) + 2**40, GT)


def test_bsr_evaluate_picks_the_perfect_setting():
    gt = np.ones((6, 8), np.int32)
    gt[:, 4:] = 2
    perfect, single = gt.copy(), np.ones_like(gt)
    # image 0: setting 0 is perfect; image 1: setting 1 is perfect.
    r = tessel.metrics.bsr_evaluate([[perfect, single], [single, perfect]], [[gt], [gt]], round_like_reference=False)
    # Rand index of one segment against two halves of 24 px: agreeing pairs are the same-half ones.
    ri_single = 2 * (24 * 23 / 2) / (48 * 47 / 2)
    assert r["pri"]["per_setting"] == pytest.approx([(1 + ri_single) / 2] * 2)
    assert r["pri"]["ois"] == pytest.approx(1.0)
    assert r["pri"]["per_image_best"] == [0, 1]
    assert r["voi"]["ois"] == pytest.approx(0.0)
    assert r["covering_ois"] == pytest.approx(1.0)
    # covering of the halves by one segment: each half's best IoU is 1/2.
    assert r["covering_per_setting"] == pytest.approx([0.75, 0.75])
    assert r["thresholds"] == [1.0, 2.0]
    with pytest.raises(ValueError, match="ground truths"):
        tessel.metrics.bsr_evaluate([[perfect]], [])
