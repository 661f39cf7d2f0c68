"""Checks that the handed-in code can have produced the handed-in results.

- The pipeline's training call: ``run_ml_pipeline.py`` must call ``.run()`` on its experiment
  (read with ``ast``, so a commented-out ``exp.run()`` does not count).
- File times: results.json written long before the code was last changed. Only a hint: a zip,
  an upload or a git checkout gives every file the time of extraction, and then the check
  says nothing (all times within SAME_TIME_S).
- In the grader's sandbox (a forked child, as grading tests run): ``Dice3d``, ``Jaccard3d`` and
  ``med_reshape`` called on small arrays must leave those arrays unchanged, and every handed-in
  ``model.pth`` must load into the student's own ``UNet``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from grader.batch.integrity.findings import (
    MODEL_FILE,
    Finding,
    Session,
    handed_in_files,
    relative_name,
)
from grader.runtime.sandbox import LIBRARY_PREFIXES, run_isolated
from grader.runtime.submission import (
    CodeUnderTest,
    SubmissionError,
    SubmissionImportError,
    copy_submission,
)

logger = logging.getLogger(__name__)

PIPELINE = Path("section2") / "src" / "run_ml_pipeline.py"
TRAINING_METHOD = "run"  # UNetExperiment.run(): epochs of train and validate (course interface)
COMMENTED_TRAINING_CALL = re.compile(r"^\s*#.*\.run\(\s*\)")
SAME_TIME_S = 5.0  # files all this close in time were extracted or checked out together
CODE_AFTER_RESULTS_S = 3600.0  # code changed over an hour after its results were written
SANDBOX_TIMEOUT_S = 60.0  # one submission's probes and model loads
SANDBOX_MEMORY_MB = 3072  # as a grading test's default limit
PROBE_SHAPE = (4, 5, 6)  # [X, Y, Z] of the random label maps given to the metrics
PROBE_SEED = 0
RESHAPE_IN = (2, 3, 3)  # [X, Y, Z] image given to med_reshape
RESHAPE_OUT = (2, 4, 4)  # the shape asked of it
NUM_CLASSES = 3  # background, anterior, posterior (MSD Task04)
ARCHITECTURE_KEYS = ("initial_filter_size", "num_downs")  # UNet kwargs a config may change


def training_call_missing(name: str, submission: Path,
                          sessions: list[Session]) -> list[Finding]:
    """A run_ml_pipeline.py without any ``<experiment>.run()`` call.

    Returns:
        One finding quoting the commented-out call (if any) and naming the handed-in
        results; [] when the call is there, the file is missing or it does not parse (the
        grading run reports those).
    """
    path = submission / PIPELINE
    if not path.is_file():
        return []
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    if any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
           and node.func.attr == TRAINING_METHOD for node in ast.walk(tree)):
        return []
    commented = [f"line {number}: {line.strip()}"
                 for number, line in enumerate(source.splitlines(), start=1)
                 if COMMENTED_TRAINING_CALL.match(line)]
    results = [session.label for session in sessions]
    evidence = (f"{PIPELINE} never calls .{TRAINING_METHOD}() on its experiment"
                + (f" ({'; '.join(commented)})" if commented else "")
                + (f", yet hands in {', '.join(results)}" if results else ""))
    passages = tuple((line, "exp.run()  # trains: epochs of train() and validate()")
                     for line in commented)
    return [Finding(name, "no-training-call", evidence, passages=passages)]


def results_older_than_code(name: str, submission: Path,
                            sessions: list[Session]) -> list[Finding]:
    """results.json files written over CODE_AFTER_RESULTS_S before the code's last change."""
    code = handed_in_files(submission / "section2" / "src", (".py",))
    if not code or not sessions:
        return []
    times = {path: path.stat().st_mtime for path in code}
    results_times = {session.label: session.results_path.stat().st_mtime
                     for session in sessions}
    every = [*times.values(), *results_times.values()]
    if max(every) - min(every) <= SAME_TIME_S:
        return []  # extracted or checked out at once: file times tell nothing
    newest = max(times, key=times.get)
    findings = []
    for label, written in results_times.items():
        gap_s = times[newest] - written
        if gap_s > CODE_AFTER_RESULTS_S:
            findings.append(Finding(
                name, "results-older-than-code",
                f"{label} written {time.strftime('%Y-%m-%d %H:%M', time.gmtime(written))} UTC; "
                f"{relative_name(submission, newest)} changed {gap_s / 3600:.1f} h later "
                "(file times: a zip or git checkout resets them)"))
    return findings


def changed_arrays(function, arrays: tuple[np.ndarray, ...], names: tuple[str, ...],
                   extra: tuple = ()) -> list[str]:
    """Call ``function(*arrays, *extra)`` on copies and say which arrays it changed.

    Returns:
        One text per changed array: which argument, how many elements, values before and
        after; [] when it changed none, or when it raised (grading reports errors).
    """
    copies = tuple(array.copy() for array in arrays)
    try:
        function(*copies, *extra)
    except Exception:  # a stub or a bug: the grading tests report it
        return []
    changes = []
    for name, before, after in zip(names, arrays, copies, strict=True):
        if after.shape != before.shape or not np.array_equal(after, before):
            count = (np.count_nonzero(after != before) if after.shape == before.shape
                     else after.size)
            changes.append(f"{name}: {count} of {before.size} elements changed, values "
                           f"{sorted(np.unique(before).tolist())[:4]} -> "
                           f"{sorted(np.unique(after).tolist())[:4]}")
    return changes


def side_effects(code: CodeUnderTest) -> list[dict]:
    """Findings (as dicts) of metrics and reshapes that change their input arrays.

    Runs inside the sandbox's child: it imports the student's code.
    """
    rng = np.random.default_rng(PROBE_SEED)
    a = rng.choice(3, size=PROBE_SHAPE).astype(np.uint8)  # [4, 5, 6] labels {0, 1, 2}
    b = rng.choice(3, size=PROBE_SHAPE).astype(np.int64)
    image = rng.random(RESHAPE_IN, dtype=np.float32)  # [2, 3, 3] in [0, 1)
    probes = (("utils.volume_stats", "Dice3d", (a, b), ("a", "b"), ()),
              ("utils.volume_stats", "Jaccard3d", (a, b), ("a", "b"), ()),
              ("utils.utils", "med_reshape", (image,), ("image",), (RESHAPE_OUT,)))
    found = []
    for module, function, arrays, names, extra in probes:
        try:
            target = getattr(code.import_module(module), function)
        except (SubmissionImportError, AttributeError):
            continue
        where = Path("section2", "src", *module.split(".")).with_suffix(".py")
        for change in changed_arrays(target, arrays, names, extra):
            found.append({"check": "mutates-input",
                          "evidence": f"{where} {function} changes its argument {change}"})
    return found


def model_problems(code: CodeUnderTest, models: list[tuple[str, str, dict]]) -> list[dict]:
    """Findings (as dicts) of model.pth files that do not load into the student's UNet.

    Args:
        code: the student's code (imported here, inside the sandbox's child).
        models: (label, path, the session's config) per model.pth.
    """
    import torch  # the parent has it loaded; a fork shares it

    try:
        network = code.import_module("networks.RecursiveUNet")
    except SubmissionImportError:
        return []
    found = []
    for label, path, config in models:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unreadable file is the finding
            found.append({"check": "model-not-loadable",
                          "evidence": f"{label} cannot be read: {type(err).__name__}: "
                                      f"{str(err).splitlines()[0][:200]}"})
            continue
        saved = isinstance(state, dict) and isinstance(state.get("state_dict"), dict)
        weights = state["state_dict"] if saved else state
        kwargs = dict(state.get("architecture") or {}) if saved else {}
        if not kwargs:
            kwargs = {"num_classes": NUM_CLASSES,
                      **{key: config[key] for key in ARCHITECTURE_KEYS
                         if isinstance(config.get(key), int)}}
        try:
            model = network.UNet(**kwargs)
            model.load_state_dict(weights)
        except Exception as err:  # a mismatch shows as RuntimeError or more
            found.append({"check": "model-not-loadable",
                          "evidence": f"{label} does not load into the submission's own "
                                      f"UNet({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
                                      f": {type(err).__name__}: "
                                      f"{str(err).strip().splitlines()[0][:200]}"})
    return found


def session_config(session: Session) -> dict:
    """The run's config: config.json beside results.json, else results.json's "config"."""
    path = session.folder / "config.json"
    if path.is_file():
        try:
            config = json.loads(path.read_text())
            if isinstance(config, dict):
                return config
        except json.JSONDecodeError:
            pass
    config = (session.results or {}).get("config")
    return config if isinstance(config, dict) else {}


def isolate_imports(folder: Path) -> None:
    """Make the top-level modules of ``folder`` import from ``folder`` alone.

    The student's packages (utils, networks, ...) are imported by their top-level names, and
    the course starter's folders may lack ``__init__.py``: a regular package of the same name
    elsewhere on sys.path (the kit's solution in a test run) would win over them. So every
    module of those names is dropped from sys.modules and every other sys.path entry holding
    one of them is removed (installed libraries' folders stay). Call it only in the sandbox's
    child.
    """
    names = {path.stem for path in folder.iterdir()
             if path.suffix == ".py" or (path.is_dir() and not path.name.startswith("."))}
    for module in list(sys.modules):
        if module.split(".")[0] in names:
            del sys.modules[module]
    sys.path[:] = [str(folder)] + [
        entry for entry in sys.path
        if Path(entry or ".").resolve() != folder.resolve()
        and (entry.startswith(LIBRARY_PREFIXES) or not any((Path(entry or ".") / name).exists()
                    or (Path(entry or ".") / f"{name}.py").exists() for name in names))]


def sandbox_checks(name: str, submission: Path, sessions: list[Session]) -> list[Finding]:
    """Side effects and model loading, run on a copy of the code in a forked child.

    Returns:
        The findings; [] when the submission has no section2/src (grading reports it). A
        child that times out or crashes is logged, not reported as a finding.
    """
    configs = {session.folder: session_config(session) for session in sessions}
    models = [(relative_name(submission, path), str(path), configs.get(path.parent, {}))
              for path in handed_in_files(submission, (MODEL_FILE,))]
    with tempfile.TemporaryDirectory(prefix="integrity-") as workspace:
        try:
            code = copy_submission(submission, Path(workspace) / "code")
        except SubmissionError as err:
            logger.info("%s: no sandbox checks: %s", name, err)
            return []
        answer = Path(workspace) / "findings.json"

        def body() -> None:
            devnull = os.open(os.devnull, os.O_WRONLY)  # the student's prints stay out
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            isolate_imports(code.section2)
            found = side_effects(code) + model_problems(code, models)
            answer.write_text(json.dumps(found))

        outcome = run_isolated(body, SANDBOX_TIMEOUT_S, SANDBOX_MEMORY_MB)
        if outcome.status != "passed" or not answer.is_file():
            logger.warning("%s: sandbox checks did not finish: %s", name, outcome.output)
            return []
        found = json.loads(answer.read_text())
    return [Finding(name, item["check"], item["evidence"]) for item in found]


def check_code(name: str, submission: Path, sessions: list[Session],
               sandbox: bool = True) -> list[Finding]:
    """Every code check of one submission.

    Args:
        name: the submission's name.
        submission: its folder.
        sessions: its results.json files (find_sessions).
        sandbox: also run the side-effect and model checks (they import the student's code).
    """
    findings = (training_call_missing(name, submission, sessions)
                + results_older_than_code(name, submission, sessions))
    return findings + (sandbox_checks(name, submission, sessions) if sandbox else [])
