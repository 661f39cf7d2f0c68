# Generated from solution/section2/src/utils/volume_stats.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Overlap metrics between a predicted and a ground-truth 3-D label map.

Dice: L. R. Dice, "Measures of the amount of ecologic association between species",
Ecology 26(3), 1945. Jaccard: P. Jaccard, "The distribution of the flora in the alpine zone",
New Phytologist 11(2), 1912. Sensitivity and specificity come from medpy.metric.binary.

``Dice3d`` and ``Jaccard3d`` measure the whole hippocampus: 0 is background and any other
value (anterior 1, posterior 2) is foreground.
"""

from __future__ import annotations

import numpy as np
from medpy.metric import binary

CLASS_NAMES = {1: "anterior", 2: "posterior"}  # MSD Task04 foreground labels


def _check_volumes(a: np.ndarray, b: np.ndarray) -> None:
    """Raise ValueError unless ``a`` and ``b`` are 3-D arrays of the same shape."""
    if np.ndim(a) != 3 or np.ndim(b) != 3:
        raise ValueError(f"expected two 3-D volumes, got ranks {np.ndim(a)} and {np.ndim(b)}")
    if np.shape(a) != np.shape(b):
        raise ValueError(f"volume shapes differ: {np.shape(a)} != {np.shape(b)}")


def Dice3d(a: np.ndarray, b: np.ndarray) -> float:
    """Dice similarity coefficient of the foregrounds of two label volumes.

    Dice = 2 |A n B| / (|A| + |B|), where A and B are the voxels with a non-zero label.

    Args:
        a: prediction [X, Y, Z], any numeric dtype; 0 is background, any other value foreground.
        b: ground truth of the same shape and convention.

    Returns:
        float in [0, 1]; 1.0 when both volumes have no foreground at all (they agree
        perfectly), 0.0 when exactly one of them is empty.

    Raises:
        ValueError: when either array is not 3-D or the shapes differ.
    """
    # TASK S2.12: Compute the Dice coefficient of the two foregrounds, as a float.
    #   Why: Dice is the course's headline metric for how well the prediction overlaps the
    #   ground truth. Labels 1 (anterior) and 2 (posterior) both count as hippocampus, so
    #   binarise first: foreground = label != 0. Both volumes empty: return 1.0 (they agree).
    #   In: a, b int or bool [X, Y, Z]; raise ValueError unless both are 3-D and of the same
    #   shape (_check_volumes does it). Out: float in [0, 1].
    #   Hint: boolean masks, & for the intersection, np.count_nonzero for the sizes.
    #   Check: pytest grader -k S2.12  (a mask with itself gives 1.0; two disjoint masks 0.0;
    #   a = [1, 2, 0, 0] and b = [2, 0, 0, 0] as [1, 1, 4] volumes give 2 * 1 / 3 = 0.667)
    raise NotImplementedError("TASK S2.12: Compute the Dice coefficient of the two foregrounds, as a float.")


def Jaccard3d(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index (intersection over union) of the foregrounds of two label volumes.

    Jaccard = |A n B| / |A u B| = Dice / (2 - Dice).

    Args:
        a: prediction [X, Y, Z], any numeric dtype; 0 is background, any other value foreground.
        b: ground truth of the same shape and convention.

    Returns:
        float in [0, 1]; 1.0 when both volumes have no foreground at all.

    Raises:
        ValueError: when either array is not 3-D or the shapes differ.
    """
    # TASK S2.13: Compute the Jaccard index (intersection over union) of the two foregrounds.
    #   Why: the second overlap metric of the report; it punishes errors harder than Dice.
    #   It is the index, not the Jaccard distance (1 - index). Binarise as in Dice3d (labels
    #   1 and 2 are both foreground); both volumes empty: return 1.0.
    #   In: a, b int or bool [X, Y, Z]; raise ValueError on a shape mismatch, as in Dice3d.
    #   Out: float in [0, 1].
    #   Hint: | gives the union of two boolean masks.
    #   Check: pytest grader -k S2.13  (for any pair, Jaccard == Dice / (2 - Dice); the
    #   example of S2.12 gives 1 / 2 = 0.5)
    raise NotImplementedError("TASK S2.13: Compute the Jaccard index (intersection over union) of the two foregrounds.")


def class_dice(pred: np.ndarray, seg: np.ndarray, label: int) -> float:
    """Dice of one class: voxels equal to ``label`` in both volumes.

    Args:
        pred: predicted labels [X, Y, Z], int.
        seg: ground-truth labels [X, Y, Z], int, values {0, 1, 2}.
        label: the class to compare (1 anterior, 2 posterior).

    Returns:
        float in [0, 1], 1.0 when neither volume holds ``label``.

    Raises:
        ValueError: when either array is not 3-D or the shapes differ.
    """
    return Dice3d(np.asarray(pred) == label, np.asarray(seg) == label)


def volume_metrics(pred: np.ndarray, seg: np.ndarray) -> dict[str, float]:
    """Every metric the pipeline reports for one test volume.

    Args:
        pred: predicted labels [X, Y, Z], int, values {0, 1, 2}.
        seg: ground-truth labels [X, Y, Z], int, values {0, 1, 2}.

    Returns:
        ``dice`` and ``jaccard`` of the whole hippocampus; ``dice_anterior`` and
        ``dice_posterior``; ``sensitivity`` (true-positive rate) and ``specificity``
        (true-negative rate) of the whole hippocampus. All floats in [0, 1], except that
        sensitivity is NaN when the ground truth has no foreground and specificity is NaN
        when it has no background (the rates are undefined there).

    Raises:
        ValueError: when either array is not 3-D or the shapes differ.
    """
    metrics = {"dice": float(Dice3d(pred, seg)), "jaccard": float(Jaccard3d(pred, seg))}
    for label, name in CLASS_NAMES.items():
        metrics[f"dice_{name}"] = float(class_dice(pred, seg, label))
    pred_mask, seg_mask = np.asarray(pred) != 0, np.asarray(seg) != 0
    # medpy's answer to 0 / 0 depends on the numpy version; say "undefined" explicitly.
    metrics["sensitivity"] = (float(binary.sensitivity(pred_mask, seg_mask))
                              if seg_mask.any() else float("nan"))
    metrics["specificity"] = (float(binary.specificity(pred_mask, seg_mask))
                              if not seg_mask.all() else float("nan"))
    return metrics
