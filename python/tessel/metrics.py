"""tessel.metrics: segmentation scores of tessel's C++ metrics (docs/metrics.md).

Every function takes H x W integer label arrays (any labels: negative, sparse or large) and,
where a benchmark has several annotations per image, a list of ground truths. Sizes must match.
"""
from . import _native
from ._arrays import as_labels


def _one(seg, gt, where):
    s = as_labels(seg, where, "segmentation")
    g = as_labels(gt, where, "ground truth")
    if s.shape != g.shape:
        raise ValueError(f"{where}: segmentation {s.shape} and ground truth {g.shape} differ in size")
    return s, g


def _many(seg, gts, where):
    s = as_labels(seg, where, "segmentation")
    if hasattr(gts, "ndim") and gts.ndim == 2:
        gts = [gts]
    gts = [as_labels(g, where, "ground truth") for g in gts]
    if not gts:
        raise ValueError(f"{where}: no ground truth given")
    for g in gts:
        if g.shape != s.shape:
            raise ValueError(f"{where}: segmentation {s.shape} and ground truth {g.shape} differ in size")
    return s, gts


def probabilistic_rand_index(seg, gts):
    """PRI: the mean Rand index over the ground truths (BSR's formula)."""
    return _native.probabilistic_rand_index(*_many(seg, gts, "tessel.metrics.probabilistic_rand_index"))


def variation_of_information(seg, gt, base=2.0):
    """(vi, H(seg|gt), H(gt|seg)) in bits by default. scikit-image's
    variation_of_information(gt, seg) returns the pair (H(seg|gt), H(gt|seg)), also in bits."""
    return _native.variation_of_information(*_one(seg, gt, "tessel.metrics.variation_of_information"), float(base))


def mean_variation_of_information(seg, gts, base=2.0):
    """VoI averaged over the ground truths (BSR), bits by default."""
    return _native.mean_variation_of_information(*_many(seg, gts, "tessel.metrics.mean_variation_of_information"),
                                                 float(base))


def covering(seg, gt, direction="gt_by_seg"):
    """Segmentation covering: "gt_by_seg" (each GT region by its best segment, BSR's) or
    "seg_by_gt"."""
    if direction not in ("gt_by_seg", "seg_by_gt"):
        raise ValueError(f"tessel.metrics.covering: direction must be 'gt_by_seg' or 'seg_by_gt', got {direction!r}")
    return _native.covering(*_one(seg, gt, "tessel.metrics.covering"), direction == "gt_by_seg")


def bsr_covering(seg, gts):
    """BSR's covering pooled over the ground truths (label 0 = no region)."""
    return _native.bsr_covering(*_many(seg, gts, "tessel.metrics.bsr_covering"))


def boundary_displacement_error(seg, gts):
    """BDE (Wright & Yang), averaged over the ground truths; pixels."""
    return _native.mean_boundary_displacement_error(*_many(seg, gts, "tessel.metrics.boundary_displacement_error"))


def hungarian_scores(seg, gt, ignore_label=0):
    """Hungarian-matched accuracy and IoU reductions: a dict with accuracy, miou_gt_classes,
    miou_union, weighted_jaccard (GraPL's, GT label `ignore_label` removed),
    weighted_jaccard_pred and iou_per_gt."""
    return _native.hungarian_scores(*_one(seg, gt, "tessel.metrics.hungarian_scores"), int(ignore_label))


def foreground_iou(pred, gt, polarity="as_given"):
    """(iou, flipped) of binary masks (non-zero = foreground); polarity "oracle" also tries the
    complement of pred and keeps the better."""
    if polarity not in ("as_given", "oracle"):
        raise ValueError(f"tessel.metrics.foreground_iou: polarity must be 'as_given' or 'oracle', got {polarity!r}")
    return _native.foreground_iou(*_one(pred, gt, "tessel.metrics.foreground_iou"), polarity == "oracle")


def bsr_evaluate(segmentations, ground_truths, thresholds=None, round_like_reference=True):
    """The BSR region benchmark over a data set (tessel-evaluate's numbers): PRI, VoI (bits) and
    covering at ODS (best common setting) and OIS (best setting per image), and covering's Best.

    segmentations[i][t]: image i's segmentation at setting t (every image has the same number
    of settings); ground_truths[i]: image i's list of ground truths. thresholds: one value per
    setting for the report (default 1..T). round_like_reference rounds the per-image values to 6
    significant digits as the BSR code does. Returns a dict: pri and voi ({per_setting,
    ods_setting, ods, ois, per_image_best}), covering_per_setting, covering_ods_setting,
    covering_ods, covering_ois, covering_best, thresholds.
    """
    where = "tessel.metrics.bsr_evaluate"
    if len(segmentations) != len(ground_truths):
        raise ValueError(f"{where}: {len(segmentations)} images of segmentations but {len(ground_truths)} "
                         "of ground truths")
    if not segmentations:
        raise ValueError(f"{where}: no images given")
    segs, gts = [], []
    for i, (s_list, g_list) in enumerate(zip(segmentations, ground_truths)):
        s_list = [as_labels(s, where, f"segmentation {i}") for s in s_list]
        if not s_list:
            raise ValueError(f"{where}: image {i} has no segmentation")
        _, g_list = _many(s_list[0], g_list, where)
        for s in s_list:
            if s.shape != s_list[0].shape:
                raise ValueError(f"{where}: image {i}'s segmentations differ in size")
        segs.append(s_list)
        gts.append(g_list)
    return _native.bsr_evaluate(segs, gts, [] if thresholds is None else [float(t) for t in thresholds],
                                bool(round_like_reference))
