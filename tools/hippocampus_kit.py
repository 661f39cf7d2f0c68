"""What the kit's scripts share: where the data is, and how an unfinished TASK ends a run.

The pipeline (``section2/src/run_ml_pipeline.py``), section 1's ``eda.py``, the grader and
``tools/get_data.py`` all find the data with ``find_training_set`` and name the same folder
when there is none (``training_set_dir``). The rule, first match wins; a match is a folder
holding ``images/`` and ``labels/``:

1. ``$HIPPOCAMPUS_DATA``, when it is such a folder (absolute, or relative to the current
   folder). A tar or an MSD ``Task04_Hippocampus`` folder there is only a source for
   ``tools/get_data.py``, which copies it into 2.
2. ``data/TrainingSet`` in the kit's root folder: where ``tools/get_data.py`` writes it.
3. ``shared/data/hippocampus/TrainingSet`` beside the kit's root folder (a shared copy on a
   lab machine).

Student scripts import this module by its path (it ships in the student release and the
autograder with ``tools/get_data.py``), so it imports nothing beyond the standard library.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "HIPPOCAMPUS_DATA"  # a course-layout data folder, or get_data.py's source
DATA_DEST = KIT_ROOT / "data"  # tools/get_data.py writes TrainingSet/ here
TRAINING_DIR = "TrainingSet"
SHARED_TRAINING_SET = KIT_ROOT.parent / "shared" / "data" / "hippocampus" / TRAINING_DIR


def data_dir_candidates() -> list[Path]:
    """The folders ``find_training_set`` tries, in order (see the module docstring)."""
    from_env = os.environ.get(DATA_ENV)
    first = [Path(from_env).expanduser()] if from_env else []
    return first + [DATA_DEST / TRAINING_DIR, SHARED_TRAINING_SET]


def holds_course_layout(folder: Path) -> bool:
    """True when ``folder`` holds ``images/`` and ``labels/`` folders."""
    return (folder / "images").is_dir() and (folder / "labels").is_dir()


def find_training_set() -> Path | None:
    """The first of ``data_dir_candidates`` that holds ``images/`` and ``labels/``, or None."""
    return next((folder for folder in data_dir_candidates() if holds_course_layout(folder)),
                None)


def training_set_dir() -> Path:
    """The data folder to use by default: ``find_training_set``'s, else the folder that
    ``tools/get_data.py`` fills (``data/TrainingSet`` in the kit), which an error then names."""
    return find_training_set() or DATA_DEST / TRAINING_DIR


def unfinished_task(err: NotImplementedError, base: Path) -> str | None:
    """One line naming the TASK, file and function that raised ``err``; None if no TASK stub.

    The student skeleton's stubs raise ``NotImplementedError("TASK <id>: <what to do>")``.

    Args:
        err: the caught error, with its traceback.
        base: folder that file names are given relative to (the script's folder).
    """
    task, _, summary = str(err).partition(": ")
    if not task.startswith("TASK ") or err.__traceback__ is None:
        return None
    frame = list(traceback.walk_tb(err.__traceback__))[-1][0]
    file = Path(frame.f_code.co_filename).resolve()
    where = file.relative_to(base) if file.is_relative_to(base) else file
    return f"Unfinished {task} in {where}, {frame.f_code.co_qualname}(): {summary}"


def run_script(run: Callable[[], object], base: Path) -> None:
    """Call a script's ``run``; when it stops at an unfinished TASK of the student skeleton,
    exit with status 1 and the one line of ``unfinished_task`` instead of a traceback.

    Args:
        run: the script's work, e.g. ``lambda: main(sys.argv[1:])``.
        base: the script's folder (file names in the line are relative to it).

    Raises:
        SystemExit: status 1 at an unfinished TASK; whatever ``run`` raises otherwise.
    """
    try:
        run()
    except NotImplementedError as err:
        line = unfinished_task(err, base)
        if line is None:
            raise
        sys.exit(line)
