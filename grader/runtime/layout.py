"""Which text a submission was written against: this kit's skeleton or the public course starter.

Two kinds of student code reach the grader. The kit's skeleton names every TASK (``# TASK
S2.02``) and grades the split through ``split_indices(n_volumes, seed)``. The public course
starter (udacity/nd320-c3-3d-imaging-starter) has bare ``# TASK:`` comments, splits the
volumes inside ``run_ml_pipeline.py``'s ``__main__``, and puts
``single_volume_inference_unpadded`` in ``section3/src/inference/``. Each submission is graded
against the text its author was given: grading tests carry ``@pytest.mark.layout("kit")`` or
``@pytest.mark.layout("course")`` where the two texts differ (unmarked tests grade both), and
a course student's failure messages name the course's file and function, never a kit name.
The TASK ids (S2.xx) stay the kit's for both layouts, so that scores compare.
"""

from __future__ import annotations

import ast
from pathlib import Path

from grader.runtime.source_functions import source_functions

KIT = "kit"
COURSE = "course"
LAYOUTS = (KIT, COURSE)

PIPELINE_FILE = "run_ml_pipeline.py"
KIT_SPLIT_FUNCTION = "split_indices"  # only the kit's skeleton has it
KIT_TASK_MARKER = "# TASK S2."  # the kit's TASK comments carry their id; the course's do not

# Where each TASK sits in the course starter, for a course student's failure messages.
COURSE_PLACES = {
    "S2.01": "run_ml_pipeline.py, Config",
    "S2.02": "run_ml_pipeline.py, the train/val/test split in __main__",
    "S2.03": "data_prep/HippocampusDatasetLoader.py, LoadHippocampusData (normalising images)",
    "S2.04": "utils/utils.py, med_reshape",
    "S2.05": "data_prep/HippocampusDatasetLoader.py, LoadHippocampusData (labels)",
    "S2.06": "data_prep/SlicesDataset.py, SlicesDataset.__getitem__",
    "S2.07": "experiments/UNetExperiment.py, UNetExperiment.train",
    "S2.08": "experiments/UNetExperiment.py, UNetExperiment.validate",
    "S2.09": "inference/UNetInferenceAgent.py, single_volume_inference (running the model)",
    "S2.10": "inference/UNetInferenceAgent.py, single_volume_inference (the mask)",
    "S2.11": "section3/src/inference/UNetInferenceAgent.py, single_volume_inference_unpadded",
    "S2.13": "utils/volume_stats.py, Jaccard3d",
    "S2.14": "experiments/UNetExperiment.py, run_test (per-volume Dice and Jaccard)",
    "S2.15": "experiments/UNetExperiment.py, run_test (mean Dice and Jaccard)",
}

# Section-2 TASK ids that no automatic test grades for a course submission, and why. The
# course gives Dice3d as finished code (not a TASK); its "why cast labels to int?" is a
# written answer, while the code part of S2.05 (labels never normalised) is graded.
COURSE_NOT_GRADED = {
    "S2.12": "Dice3d is given, finished, in the course starter: not a TASK of the course",
}

# Config's placeholder values in the course starter: a Config still holding one is unfilled.
COURSE_CONFIG_PLACEHOLDERS = ("YOUR DIRECTORY HERE", "RESULTS GO HERE")


def defines_function(path: Path, name: str) -> bool:
    """True when the Python file ``path`` defines a top-level function ``name``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return False
    return any(qualified == name and node in tree.body
               for qualified, node in source_functions(tree))


def detect_layout(section2: Path) -> str:
    """The layout of a submission's ``section2/src``: ``KIT`` or ``COURSE``.

    The kit's layout defines ``split_indices`` in run_ml_pipeline.py or keeps a kit TASK id in
    a comment; a folder with run_ml_pipeline.py and neither is the course starter's. A folder
    without run_ml_pipeline.py is graded as the kit's (its tests name what is missing).

    Args:
        section2: the folder holding run_ml_pipeline.py and its packages.
    """
    pipeline = section2 / PIPELINE_FILE
    if not pipeline.is_file() or defines_function(pipeline, KIT_SPLIT_FUNCTION):
        return KIT
    for path in sorted(section2.rglob("*.py")):
        if KIT_TASK_MARKER in path.read_text(encoding="utf-8", errors="replace"):
            return KIT
    return COURSE
