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


# ---- scikit-learn's definitions, where it has them -------------------------------------------

def _sklearn():
    return pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed: the comparisons of "
                               "tessel.metrics with sklearn.metrics are skipped")


def _matched_by_scipy(seg, gt):
    """seg relabelled by scipy's linear_sum_assignment on the overlap table: each segment takes
    the GT label it is assigned to, unassigned segments (and, as in tessel, segments assigned
    to a GT label they do not overlap) take new labels that no GT pixel has."""
    optimize = pytest.importorskip("scipy.optimize", reason="scipy is not installed")
    seg_labels, seg_idx = np.unique(seg, return_inverse=True)
    gt_labels, gt_idx = np.unique(gt, return_inverse=True)
    table = np.zeros((len(seg_labels), len(gt_labels)), np.int64)
    np.add.at(table, (seg_idx.ravel(), gt_idx.ravel()), 1)
    rows, cols = optimize.linear_sum_assignment(table, maximize=True)
    new_label = np.arange(len(seg_labels)) + gt_labels.max() + 1  # dummies
    for r, c in zip(rows, cols):
        if table[r, c] > 0:
            new_label[r] = gt_labels[c]
    return new_label[seg_idx].reshape(seg.shape)


def _seg_and_gt(seed, shape=(30, 40), gt_classes=5, seg_classes=8):
    # seg follows a permutation of gt's labels on 70 % of the pixels, random labels elsewhere,
    # with more segments than GT labels (dummies) and GT label 0 present (the ignore label).
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, gt_classes, shape)
    perm = rng.permutation(seg_classes)[:gt_classes] + 10
    seg = np.where(rng.random(shape) < 0.7, perm[gt], rng.integers(10, 10 + seg_classes, shape))
    return seg, gt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hungarian_scores_equal_sklearn_after_scipy_matching(seed):
    skm = _sklearn()
    seg, gt = _seg_and_gt(seed)
    matched = _matched_by_scipy(seg, gt)
    s = tessel.metrics.hungarian_scores(seg, gt)
    g, m = gt.ravel(), matched.ravel()
    gt_labels = np.unique(g)
    assert len(np.unique(m)) > len(gt_labels)  # dummies exist, so (a) and (b) differ
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(g, m), rel=1e-12)
    assert s["iou_per_gt"] == pytest.approx(list(skm.jaccard_score(g, m, labels=gt_labels, average=None)), rel=1e-12)
    assert s["miou_gt_classes"] == pytest.approx(skm.jaccard_score(g, m, labels=gt_labels, average="macro"), rel=1e-12)
    assert s["miou_union"] == pytest.approx(skm.jaccard_score(g, m, average="macro"), rel=1e-12)
    # (d) GraPL's first version: sklearn's call with the matched map as y_true.
    assert s["weighted_jaccard_pred"] == pytest.approx(skm.jaccard_score(m, g, average="weighted"), rel=1e-12)
    # (c) torchmetrics' ignore_index: GT-0 pixels removed, then weighted by GT support.
    keep = g != 0
    kept_labels = np.unique(g[keep])
    assert s["weighted_jaccard"] == pytest.approx(
        skm.jaccard_score(g[keep], m[keep], labels=kept_labels, average="weighted"), rel=1e-12)


def test_rand_index_and_foreground_iou_equal_sklearn():
    skm = _sklearn()
    seg, gt = _seg_and_gt(4)
    _, gt2 = _seg_and_gt(5)
    assert tessel.metrics.probabilistic_rand_index(seg, [gt]) == pytest.approx(skm.rand_score(gt.ravel(), seg.ravel()),
                                                                             rel=1e-12)
    pri = (skm.rand_score(gt.ravel(), seg.ravel()) + skm.rand_score(gt2.ravel(), seg.ravel())) / 2
    assert tessel.metrics.probabilistic_rand_index(seg, [gt, gt2]) == pytest.approx(pri, rel=1e-12)
    pred, mask = (seg % 3 == 0).astype(np.int32), (gt >= 3).astype(np.int32)
    iou, flipped = tessel.metrics.foreground_iou(pred, mask)
    assert not flipped and iou == pytest.approx(skm.jaccard_score(mask.ravel(), pred.ravel()), rel=1e-12)
    best, flipped = tessel.metrics.foreground_iou(pred, mask, polarity="oracle")
    complement = skm.jaccard_score(mask.ravel(), 1 - pred.ravel())
    assert best == pytest.approx(max(iou, complement), rel=1e-12) and flipped == (complement > iou)
