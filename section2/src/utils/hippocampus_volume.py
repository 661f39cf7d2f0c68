# Generated from solution/section2/src/utils/hippocampus_volume.py by tools/make_skeleton.py; edit that file, then run the tool.
"""Hippocampus volume in mm3 from a label map, and how far predicted volumes are from true ones.

The course's number is the volume: labelled voxels times the volume of one voxel (the product
of the header's voxel spacing). Every volume that section 2 reports (``predict.py``'s table,
``results.json`` of a test run) is computed by ``label_volumes_mm3`` here.

Agreement of two measurements of the same quantity: J. M. Bland and D. G. Altman,
"Statistical methods for assessing agreement between two methods of clinical measurement",
The Lancet 327(8476), 307-310, 1986: the bias is the mean difference, and 95 % of the
differences lie within bias +- 1.96 standard deviations (the limits of agreement).
"""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from utils.volume_stats import CLASS_NAMES

logger = logging.getLogger(__name__)

LABEL_VALUES = (0, *CLASS_NAMES)  # background, then the foreground labels
VOLUME_PARTS = (*CLASS_NAMES.values(), "total")  # anterior, posterior, whole hippocampus
LIMITS_OF_AGREEMENT_SD = 1.96  # standard deviations: 95 % of differences (Bland and Altman)
AGREEMENT_FIGURE_SIZE = (6.5, 4.5)  # inches
AGREEMENT_DPI = 120  # enough to read the axis labels of a 6.5 x 4.5 inch figure


def label_volumes_mm3(labels: np.ndarray, spacing_mm: tuple[float, ...]) -> dict[str, float]:
    """Volume of each hippocampus label and of the whole, in mm3.

    Args:
        labels: int [X, Y, Z], values {0, 1, 2} (0 background, 1 anterior, 2 posterior).
        spacing_mm: (3,) floats, mm: the voxel size along X, Y and Z (the header's zooms).

    Returns:
        ``{"anterior_mm3", "posterior_mm3", "total_mm3"}``, floats, mm3; total is anterior
        plus posterior. All 0.0 for a volume without foreground.

    Raises:
        ValueError: when ``labels`` is not 3-D, holds values other than {0, 1, 2}, or
            ``spacing_mm`` is not three positive finite numbers.
    """
    labels = np.asarray(labels)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if labels.ndim != 3:
        raise ValueError(f"expected a 3-D label map [X, Y, Z], got shape {labels.shape}")
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise ValueError(f"voxel spacing {tuple(spacing.tolist())} mm is not three positive "
                         "finite sizes")
    unexpected = np.setdiff1d(np.unique(labels), LABEL_VALUES)
    if unexpected.size:
        raise ValueError(f"labels hold values {unexpected[:10].tolist()}; expected {{0, 1, 2}}")
    voxel_mm3 = float(np.prod(spacing))
    volumes = {f"{name}_mm3": np.count_nonzero(labels == label) * voxel_mm3
               for label, name in CLASS_NAMES.items()}
    volumes["total_mm3"] = sum(volumes.values())
    return volumes


def compare_volumes_mm3(pred: np.ndarray, seg: np.ndarray,
                        spacing_mm: tuple[float, ...]) -> dict[str, float]:
    """Predicted and true volumes of one scan, and their difference, in mm3.

    Args:
        pred: predicted labels, int [X, Y, Z], values {0, 1, 2}.
        seg: ground-truth labels of the same shape and values.
        spacing_mm: (3,) floats, mm: the voxel size.

    Returns:
        For each part in anterior, posterior, total: ``pred_<part>_mm3``,
        ``true_<part>_mm3`` and ``diff_<part>_mm3`` (predicted minus true; negative when the
        model under-segments), floats, mm3.

    Raises:
        ValueError: as ``label_volumes_mm3``, or when the shapes differ.
    """
    if np.shape(pred) != np.shape(seg):
        raise ValueError(f"prediction shape {np.shape(pred)} != label shape {np.shape(seg)}")
    predicted, true = label_volumes_mm3(pred, spacing_mm), label_volumes_mm3(seg, spacing_mm)
    comparison = {}
    for part in VOLUME_PARTS:
        comparison[f"pred_{part}_mm3"] = predicted[f"{part}_mm3"]
        comparison[f"true_{part}_mm3"] = true[f"{part}_mm3"]
        comparison[f"diff_{part}_mm3"] = predicted[f"{part}_mm3"] - true[f"{part}_mm3"]
    return comparison


def volume_agreement(comparisons: list[dict[str, float]]) -> dict[str, float]:
    """Mean absolute and relative volume error over scans, and the Bland-Altman figures.

    Args:
        comparisons: one ``compare_volumes_mm3`` dict per scan.

    Returns:
        For each part (anterior, posterior, total): ``mean_abs_diff_<part>_mm3`` (mean of
        |predicted - true|, mm3) and ``mean_rel_diff_<part>`` (mean of |predicted - true| /
        true, a fraction: 0.05 is 5 %, over the scans whose true volume is above 0; NaN when
        there is none). For the total: ``bias_total_mm3`` (mean of predicted - true) and
        ``loa_low_total_mm3``, ``loa_high_total_mm3`` (bias -+ 1.96 SD of the differences;
        equal to the bias for a single scan). Empty dict for no scans.
    """
    if not comparisons:
        return {}
    agreement = {}
    for part in VOLUME_PARTS:
        diff = np.array([c[f"diff_{part}_mm3"] for c in comparisons], dtype=np.float64)
        true = np.array([c[f"true_{part}_mm3"] for c in comparisons], dtype=np.float64)
        agreement[f"mean_abs_diff_{part}_mm3"] = float(np.mean(np.abs(diff)))
        measurable = true > 0
        agreement[f"mean_rel_diff_{part}"] = (
            float(np.mean(np.abs(diff[measurable]) / true[measurable]))
            if measurable.any() else float("nan"))
    diff = np.array([c["diff_total_mm3"] for c in comparisons], dtype=np.float64)
    bias = float(np.mean(diff))
    spread = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0  # sample SD
    agreement.update({"bias_total_mm3": bias,
                      "loa_low_total_mm3": bias - LIMITS_OF_AGREEMENT_SD * spread,
                      "loa_high_total_mm3": bias + LIMITS_OF_AGREEMENT_SD * spread})
    return agreement


def add_volume_agreement(volume_stats: list, overall: dict,
                         test_labels: list[tuple[np.ndarray, np.ndarray, tuple]]
                         ) -> list[dict[str, float]]:
    """Add each test volume's predicted and true volumes to its metrics, and their agreement.

    Called by ``UNetExperiment.run_test`` after the metrics are scored and averaged, so the
    volumes never enter the means of the metrics, and a metrics step that went wrong is
    graded on its own: this step then leaves the results as they are and logs a warning.

    Args:
        volume_stats: one metrics dict per test volume, in test order; each gains its
            ``compare_volumes_mm3`` fields, in place.
        overall: the mean metrics; gains ``volume_agreement`` over the test volumes, in place.
        test_labels: per test volume, in test order, (pred, seg, spacing_mm): predicted and
            true labels int [X, Y, Z] in {0, 1, 2}, and the voxel size (3,) in mm.

    Returns:
        The ``compare_volumes_mm3`` dicts, one per test volume; empty when nothing was added
        (no test volume, a prediction with labels outside {0, 1, 2}, or ``volume_stats`` not
        one dict per test volume).
    """
    try:
        comparisons = [compare_volumes_mm3(*labels) for labels in test_labels]
    except ValueError as err:
        logger.warning("test volumes in mm3 not measured: %s", err)
        return []
    if len(volume_stats) != len(comparisons) or not all(isinstance(s, dict) for s in volume_stats):
        logger.warning("volume_stats holds %d entries for %d test volumes; their volumes in "
                       "mm3 are left out of the results", len(volume_stats), len(comparisons))
        return []
    for stats, comparison in zip(volume_stats, comparisons, strict=True):
        stats.update(comparison)
    if isinstance(overall, dict):
        overall.update(volume_agreement(comparisons))
    return comparisons


def plot_volume_agreement(comparisons: list[dict[str, float]], title: str = "") -> Figure:
    """Bland-Altman plot of predicted against true whole-hippocampus volume.

    Each scan is a point at (mean of predicted and true, predicted - true); lines mark the
    bias and the 95 % limits of agreement (see ``volume_agreement``).

    Args:
        comparisons: one ``compare_volumes_mm3`` dict per scan, at least one.
        title: figure title, e.g. the session's name.

    Returns:
        The matplotlib Figure (Agg canvas; save it with ``figure.savefig``).

    Raises:
        ValueError: when ``comparisons`` is empty.
    """
    if not comparisons:
        raise ValueError("no scans to plot: the volume agreement needs at least one")
    pred = np.array([c["pred_total_mm3"] for c in comparisons])
    true = np.array([c["true_total_mm3"] for c in comparisons])
    agreement = volume_agreement(comparisons)
    figure = Figure(figsize=AGREEMENT_FIGURE_SIZE, dpi=AGREEMENT_DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.scatter((pred + true) / 2, pred - true, s=18, color="tab:blue", alpha=0.8,
                 label=f"test scans ({len(comparisons)})")
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.axhline(agreement["bias_total_mm3"], color="tab:red",
                 label=f"bias {agreement['bias_total_mm3']:+.0f} mm3")
    for key in ("loa_low_total_mm3", "loa_high_total_mm3"):
        axes.axhline(agreement[key], color="tab:red", linestyle="--")
    axes.plot([], [], color="tab:red", linestyle="--",
              label=f"95 % limits of agreement {agreement['loa_low_total_mm3']:+.0f} to "
                    f"{agreement['loa_high_total_mm3']:+.0f} mm3")
    axes.set_xlabel("mean of predicted and true volume (mm3)")
    axes.set_ylabel("predicted - true volume (mm3)")
    axes.set_title(f"{title}\nwhole hippocampus: mean |error| "
                   f"{agreement['mean_abs_diff_total_mm3']:.0f} mm3 "
                   f"({100 * agreement['mean_rel_diff_total']:.1f} %)".strip())
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure
