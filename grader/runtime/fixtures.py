"""Shared helpers of the section 2 grading tests: synthetic data, configs, probe models.

Test bodies run in a forked child (see ``grader/runtime/sandbox.py``). Everything here builds NumPy
data, writes NIfTI files, or defines classes; torch modules defined here are created only
inside test bodies, so the parent never runs a torch computation.

The reference implementations (``grader/hidden/reference.py``) stand in for a
submission's own helpers where a test grades one TASK and must not lose points for another:
the loader tests of S2.03, S2.04 and S2.05 and the S2.11 tests use the reference
``med_reshape`` or normalisation, the S2.07 tests feed ``train_loader`` from ReferenceSlices,
and the S2.08, S2.14 and S2.15 tests use the reference Dice and Jaccard. The student release
has no ``grader/hidden``: there the public tests run on the student's own helpers.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from types import MethodType, ModuleType, SimpleNamespace

import nibabel as nib
import numpy as np
import torch
from torch import nn

from grader.runtime.layout import COURSE

PATCH = 16  # px: divisible by 2**4, as a course-starter U-Net (4 poolings) needs
# px: the course starter's patch. Its run_test builds UNetInferenceAgent with the default
# patch_size=64, and many course solutions write 64 into their inference code.
COURSE_PATCH = 64
NUM_CLASSES = 3  # background, anterior, posterior (MSD Task04)
# Intensity of each label in a synthetic normalised image: background 0, anterior 0.5,
# posterior 1. OracleModel maps these intensities back to their labels.
LABEL_INTENSITY = (0.0, 0.5, 1.0)
ORACLE_SHARPNESS = 50.0  # logits -50 * (x - centre)**2: a clear winner for every voxel

try:  # the instructors' grader: reference helpers keep each TASK graded on its own
    from grader.hidden import reference
except ImportError:  # the student release has no grader/hidden: your own code is used
    reference = None


def is_course(code) -> bool:
    """True when the code was written against the public course starter."""
    return code.layout == COURSE


def patch_of(code) -> int:
    """The in-plane size (px) of the padded volumes a layout's code works on."""
    return COURSE_PATCH if is_course(code) else PATCH


# -- NIfTI files and volumes -----------------------------------------------------------------
def write_nifti(path: Path, array: np.ndarray) -> Path:
    """Save ``array`` (its dtype kept) as a NIfTI file with an identity affine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    return path


def write_training_set(root: Path, cases: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write ``{file name: (image, seg)}`` in the course layout root/images, root/labels."""
    for name, (image, seg) in cases.items():
        write_nifti(root / "images" / name, image)
        write_nifti(root / "labels" / name, seg)
    return root


def by_filename(data) -> dict[str, dict]:
    """``{filename: volume}`` of what LoadHippocampusData returned (a list or an array).

    A course-starter loader lists the files in directory order, so tests find volumes by name.
    """
    volumes = list(data)
    assert all(isinstance(volume, dict) and "filename" in volume for volume in volumes), (
        "LoadHippocampusData must return dicts with 'image', 'seg' and 'filename'")
    return {os.path.basename(str(volume["filename"])): volume for volume in volumes}


def random_seg(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """uint8 labels in {0, 1, 2} of ``shape``, holding at least one 0 and one 2."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(NUM_CLASSES, size=shape, p=(0.5, 0.25, 0.25)).astype(np.uint8)
    seg.flat[0], seg.flat[-1] = 0, 2
    return seg


def oracle_image(seg: np.ndarray) -> np.ndarray:
    """float32 image whose intensity says the label: 0, 0.5 or 1 (see LABEL_INTENSITY)."""
    return np.take(np.array(LABEL_INTENSITY, dtype=np.float32), seg)


def raw_image(seg: np.ndarray, low: float, high: float, dtype=np.float32) -> np.ndarray:
    """Raw intensities in [low, high] whose min-max normalisation is ``oracle_image(seg)``."""
    return (low + (high - low) * oracle_image(seg).astype(np.float64)).astype(dtype)


def frame_shape(code, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """[X, P, P]: the shape a volume of ``shape`` [X, H, W] has once the layout's loader has
    padded it (P = ``patch_of(code)``)."""
    return (shape[0], patch_of(code), patch_of(code))


def framed_seg(code, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """uint8 labels in {0, 1, 2} of a volume of ``shape`` [X, H, W] as the layout's loader
    hands them on: [X, P, P], drawn in the top-left H x W of every slice, background beyond.

    The labels are drawn in that frame rather than padded into it: a padding function here
    would be an answer to TASK S2.04, and this module ships to students.
    """
    _, height, width = shape
    seg = random_seg(frame_shape(code, shape), seed)
    seg[:, height:, :] = 0
    seg[:, :, width:] = 0
    seg[-1, height - 1, width - 1] = 2  # random_seg's label 2 sat beyond the frame
    return seg


def shown_labels(seg: np.ndarray, shape: tuple[int, int, int], seed: int,
                 fraction: float = 0.3) -> np.ndarray:
    """``seg`` [X, P, P] with about ``fraction`` of the voxels of its top-left ``shape``
    [X, H, W] changed to another label; the background beyond stays 0."""
    _, height, width = shape
    wrong = np.random.default_rng(seed).uniform(size=seg.shape) < fraction
    wrong[:, height:, :] = False
    wrong[:, :, width:] = False
    shown = seg.copy()
    shown[wrong] = (shown[wrong] + 1) % NUM_CLASSES
    return shown


def loaded_volume(code, seg: np.ndarray, filename: str, shape: tuple[int, int, int],
                  image: np.ndarray | None = None) -> dict:
    """A volume as the code's own loader gives it, from labels already in the layout's frame.

    Args:
        seg: int [X, P, P], values {0, 1, 2}, background beyond the original ``shape``.
        shape: the volume's original [X, H, W] (``original_shape``).
        image: float [X, P, P] in [0, 1]; default ``oracle_image(seg)``.

    Returns:
        The course keys (image float32, seg, filename) and the kit's (original_shape, affine):
        the course's int64 labels (``.astype(int)``), the kit's uint8 ones.
    """
    image = oracle_image(seg) if image is None else image
    return {"image": image.astype(np.float32),
            "seg": seg.astype(np.int64 if is_course(code) else np.uint8),
            "filename": filename, "original_shape": tuple(shape), "affine": np.eye(4)}


def random_volume(code, shape: tuple[int, int, int], seed: int, filename: str) -> dict:
    """``loaded_volume`` of random labels (``framed_seg``) of a volume of ``shape``."""
    return loaded_volume(code, framed_seg(code, shape, seed), filename, shape)


def as_dataset(volumes: list[dict]) -> np.ndarray:
    """The volumes as a 1-D object array: what a course-starter loader returns.

    A course-starter UNetExperiment indexes it with a list (``dataset[split["train"]]``);
    the kit indexes it volume by volume. Both work on an object array.
    """
    dataset = np.empty(len(volumes), dtype=object)
    for index, volume in enumerate(volumes):
        dataset[index] = volume
    return dataset


def use_reference_metrics(code) -> None:
    """Replace the submission's Dice3d and Jaccard3d by the reference ones (S2.12, S2.13).

    Call inside a test body only (the child's modules change, never the parent's).
    """
    if reference is None:
        return
    for name in ("utils.volume_stats", "experiments.UNetExperiment"):
        if name == "experiments.UNetExperiment":
            module = import_experiment_module(code)
        else:
            module = import_or_stand_in(code, name)
        for attribute, function in (("Dice3d", reference.reference_dice),
                                    ("Jaccard3d", reference.reference_jaccard)):
            if hasattr(module, attribute):
                setattr(module, attribute, function)


def use_reference_preprocessing(code, *module_names: str, med_reshape: bool = True,
                                normalize: bool = True) -> None:
    """Replace the submission's med_reshape (S2.04) and normalisation (S2.03) by the reference.

    Patches ``utils.utils`` and each of ``module_names`` (which import them by name), e.g.
    "data_prep.HippocampusDatasetLoader" or "inference.UNetInferenceAgent".
    """
    if reference is None:
        return
    for name in ("utils.utils", *module_names):
        module = code.import_module(name)
        if med_reshape and hasattr(module, "med_reshape"):
            module.med_reshape = reference.reference_med_reshape
        if normalize and hasattr(module, "normalize_intensity"):
            module.normalize_intensity = reference.reference_normalize


def use_reference_val_loader(experiment, volumes: list[dict], batch_size: int) -> None:
    """Feed a course-starter ``validate()`` (which iterates ``self.val_loader``) from
    ReferenceSlices, so that validation (S2.08) is graded apart from SlicesDataset (S2.06).
    The kit's validate() reads the volumes itself and keeps them."""
    if reference is not None and hasattr(experiment, "val_loader"):
        experiment.val_loader = torch.utils.data.DataLoader(
            reference.ReferenceSlices(volumes), batch_size=batch_size, shuffle=False)


def use_reference_agent(code) -> None:
    """Make a course-starter run_test build the reference inference agent (argmax of the
    model's logits), so that run_test (S2.14, S2.15) is graded apart from the student's
    single_volume_inference (S2.09, S2.10). Call inside a test body only."""
    if reference is None:
        return
    module = code.import_module("experiments.UNetExperiment")
    if hasattr(module, "UNetInferenceAgent"):
        module.UNetInferenceAgent = reference.ReferenceAgent


def use_reference_inference(agent) -> None:
    """Give a course agent the reference single_volume_inference, so that its
    single_volume_inference_unpadded (S2.11) is graded apart from it (S2.10)."""
    if reference is not None and hasattr(agent, "model"):
        agent.single_volume_inference = MethodType(reference.ReferenceAgent.single_volume_inference,
                                                   agent)


def use_reference_train_loader(experiment, volumes: list[dict], batch_size: int) -> None:
    """Give ``experiment`` a training loader over ``volumes`` built on ReferenceSlices, so that
    its training step (S2.07) is graded apart from the submission's SlicesDataset (S2.06).

    Both the course starter and the kit iterate over ``self.train_loader``; an experiment
    without that attribute keeps its own loader.
    """
    if reference is not None and hasattr(experiment, "train_loader"):
        experiment.train_loader = torch.utils.data.DataLoader(
            reference.ReferenceSlices(volumes), batch_size=batch_size, shuffle=False)


def kit_function(module: ModuleType, name: str, task: str, signature: str):
    """``module.<name>``, or fail saying which function the kit grades ``task`` through."""
    __tracebackhide__ = True
    function = getattr(module, name, None)
    if not callable(function):
        raise AssertionError(f"TASK {task} is graded through {signature} in "
                             f"{module.__name__.replace('.', '/')}.py, which this submission "
                             f"lacks; put your code for TASK {task} into that function")
    return function


# -- experiments -----------------------------------------------------------------------------
def student_config_settings(code) -> dict:
    """The attributes of the submission's own ``Config()``, or {} when it cannot be built.

    A course student's UNetExperiment may read settings they added to their Config.
    """
    try:
        return dict(vars(import_pipeline_module(code).Config()))
    except Exception:  # a broken Config is graded by S2.01, not here
        return {}


def experiment_config(tmp_path: Path, base: dict | None = None, **overrides) -> SimpleNamespace:
    """A config carrying the course starter's attributes and the kit's, everything tiny.

    Args:
        base: the student's own Config attributes, kept where the grader sets none.
    """
    settings = dict(base or {})
    settings.update({
        # the course starter's Config
        "name": "grader", "root_dir": str(tmp_path / "data"), "n_epochs": 20,
        "learning_rate": 1e-3, "batch_size": 8, "patch_size": PATCH,
        "test_results_dir": str(tmp_path / "results"),
        # the kit's additions
        "initial_filter_size": 4, "num_downs": 2, "seed": 0, "device": "cpu",
        "max_volumes": None, "max_batches_per_epoch": None,
        "tensorboard_dir": str(tmp_path / "runs"), "out_dir": str(tmp_path / "session"),
    })
    settings.update(overrides)
    return SimpleNamespace(**settings)


def stand_in_modules() -> dict[str, ModuleType]:
    """Reference stand-ins for the modules a course UNetExperiment imports, by module name."""
    if reference is None:
        return {}
    stats = ModuleType("utils.volume_stats")
    stats.Dice3d, stats.Jaccard3d = reference.reference_dice, reference.reference_jaccard
    slices = ModuleType("data_prep.SlicesDataset")
    slices.SlicesDataset = reference.ReferenceSlices
    agent = ModuleType("inference.UNetInferenceAgent")
    agent.UNetInferenceAgent = reference.ReferenceAgent
    return {module.__name__: module for module in (stats, slices, agent)}


def import_or_stand_in(code, name: str) -> ModuleType:
    """The submission's module ``name``, or its reference stand-in when it fails to import
    (its own TASK's tests report that); the module itself when no stand-in exists."""
    stand_in = stand_in_modules().get(name)
    try:
        return code.import_module(name)
    except ImportError:
        if stand_in is None:
            raise
        sys.modules[name] = stand_in
        return stand_in


def import_experiment_module(code) -> ModuleType:
    """The submission's experiments.UNetExperiment, importable even when a module it imports
    for another TASK (volume_stats, SlicesDataset, UNetInferenceAgent) fails to import: that
    module is replaced by its reference stand-in, so one bad import costs only its own TASK."""
    for name in stand_in_modules():
        import_or_stand_in(code, name)
    return code.import_module("experiments.UNetExperiment")


def import_pipeline_module(code) -> ModuleType:
    """The submission's run_ml_pipeline, for its Config (S2.01): when the experiment or loader
    module it imports fails to import, an empty stand-in takes its place."""
    for name, attribute, load in (
            ("experiments.UNetExperiment", "UNetExperiment", import_experiment_module),
            ("data_prep.HippocampusDatasetLoader", "LoadHippocampusData",
             lambda code: code.import_module("data_prep.HippocampusDatasetLoader"))):
        try:
            load(code)
        except ImportError:
            placeholder = ModuleType(name)
            setattr(placeholder, attribute, None)
            sys.modules[name] = placeholder
    return code.import_module("run_ml_pipeline")


def build_experiment(code, tmp_path: Path, volumes: list[dict], split: dict, **overrides):
    """A UNetExperiment over ``volumes``, run from ``tmp_path`` (a course starter writes runs/
    relative to the working folder). Call inside a test body only.

    For course code, the config starts from the student's own Config attributes and
    TensorBoard's image panels (given code, slow figures) are not drawn.
    """
    os.chdir(tmp_path)
    base = {}
    if is_course(code):
        base = student_config_settings(code)
        overrides = {"patch_size": COURSE_PATCH, **overrides}
    module = import_experiment_module(code)
    if is_course(code) and hasattr(module, "log_to_tensorboard"):
        module.log_to_tensorboard = lambda *args, **kwargs: None
    torch.manual_seed(0)
    return module.UNetExperiment(experiment_config(tmp_path, base, **overrides), split,
                                 as_dataset(volumes))


def agent_for(code, model: nn.Module, patch_size: int | None = None):
    """The submission's UNetInferenceAgent over ``model``, on the CPU (patch: the layout's).
    Call inside a test body only."""
    module = code.import_module("inference.UNetInferenceAgent")
    return module.UNetInferenceAgent(model=model, device="cpu",
                                     patch_size=patch_of(code) if patch_size is None
                                     else patch_size)


UNPADDED = "single_volume_inference_unpadded"
COURSE_SECTION3_AGENT = Path("inference") / "UNetInferenceAgent.py"


def has_own_unpadded(agent_class) -> bool:
    """True when the class defines single_volume_inference_unpadded with a body that does more
    than raise the course starter's bare NotImplementedError."""
    function = getattr(agent_class, UNPADDED, None)
    if function is None:
        return False
    names = getattr(getattr(function, "__code__", None), "co_names", ())
    return not (set(names) <= {"NotImplementedError"} and "NotImplementedError" in names)


def course_unpadded_agent_class(code):
    """The UNetInferenceAgent class that holds a course student's unpadded inference.

    The course asks for single_volume_inference_unpadded in section3/src/inference/; some
    students wrote it into section 2's agent. Section 2's is used when it has its own body,
    else section 3's (imported under its own module name, beside section 2's packages).

    Raises:
        AssertionError: when neither agent has it.
    """
    __tracebackhide__ = True
    section2 = code.import_module("inference.UNetInferenceAgent").UNetInferenceAgent
    if has_own_unpadded(section2) or code.section3 is None:
        return section2
    path = code.section3 / COURSE_SECTION3_AGENT
    if not path.is_file():
        return section2
    for folder in (code.section2, code.section3):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("course_section3_inference_agent", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise AssertionError(f"importing section3/src/{COURSE_SECTION3_AGENT.as_posix()} "
                             f"failed: {type(err).__name__}: {err}") from err
    if reference is not None and hasattr(module, "med_reshape"):
        module.med_reshape = reference.reference_med_reshape  # S2.04 is graded apart
    return module.UNetInferenceAgent


def returned_loss(value) -> float | None:
    """The loss in what validate() returned: a number, the first item of a tuple, or a dict's
    "loss"-like entry; None when it returned none (a course starter only logs it)."""
    if value is None:
        return None
    if isinstance(value, dict):
        keys = [key for key in ("loss", "val_loss", "validation_loss") if key in value]
        keys += [key for key in value if "loss" in str(key).lower()]
        return float(value[keys[0]]) if keys else None
    if isinstance(value, (tuple, list)):
        return float(value[0]) if value else None
    return float(value)


def is_finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


# -- probe models ----------------------------------------------------------------------------
class ProbeModel(nn.Module):
    """A model that records, for every forward pass, its mode and the grad mode.

    ``calls`` holds one dict per forward: ``training`` (any submodule in training mode),
    ``grad_enabled`` (torch.is_grad_enabled()), ``shape`` of the input, and ``input`` (a NumPy
    copy, when ``keep_inputs``).
    """

    def __init__(self, keep_inputs: bool = False) -> None:
        super().__init__()
        self.calls: list[dict] = []
        self.keep_inputs = keep_inputs

    def record(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"the model takes slices as a [B, 1, H, W] tensor, got "
                             f"{tuple(x.shape)}")
        self.calls.append({
            "training": any(module.training for module in self.modules()),
            "grad_enabled": torch.is_grad_enabled(), "shape": tuple(x.shape),
            "input": x.detach().cpu().numpy().copy() if self.keep_inputs else None})
        return x

    def recorded_inputs(self) -> np.ndarray:
        """Every recorded input slice, in call order: [N, H, W]."""
        return np.concatenate([call["input"][:, 0] for call in self.calls])


class OracleModel(ProbeModel):
    """Maps the intensities 0, 0.5 and 1 of ``oracle_image`` to logits of labels 0, 1, 2.

    Mode-independent; its one parameter (the sharpness) lets code ask for parameters.
    """

    def __init__(self, keep_inputs: bool = False) -> None:
        super().__init__(keep_inputs)
        self.sharpness = nn.Parameter(torch.tensor(ORACLE_SHARPNESS))
        self.register_buffer("centres", torch.tensor(LABEL_INTENSITY).view(1, NUM_CLASSES, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.record(x).float()
        return -self.sharpness * (x - self.centres) ** 2


class TinyNet(ProbeModel):
    """Two convolutions, 1 -> 4 -> 3 channels: deterministic, the same in train and eval mode."""

    def __init__(self, keep_inputs: bool = False) -> None:
        super().__init__(keep_inputs)
        self.features = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.head = nn.Conv2d(4, NUM_CLASSES, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.features(self.record(x))))


class DropoutNet(ProbeModel):
    """A 1x1 convolution after Dropout(p=0.9): its output in training mode is mostly noise."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=0.9)
        self.head = nn.Conv2d(1, NUM_CLASSES, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.record(x)))


class RecordingOptimizer(torch.optim.SGD):
    """An optimiser that never moves the weights; ``step()`` keeps a copy of every gradient."""

    def __init__(self, params) -> None:
        super().__init__(params, lr=0.0)
        self.grads: list[list[torch.Tensor | None]] = []

    @torch.no_grad()
    def step(self, closure=None):
        self.grads.append([None if p.grad is None else p.grad.detach().clone()
                           for group in self.param_groups for p in group["params"]])


class RecordingLoss(nn.Module):
    """Cross-entropy that keeps what it was called with: prediction, target, value, grad mode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(prediction, target)
        self.calls.append({"prediction": prediction.detach().clone(),
                           "target": target.detach().clone(), "loss": float(loss.detach()),
                           "grad_enabled": torch.is_grad_enabled()})
        return loss


def prepare_run_test(code) -> None:
    """Grade run_test (S2.14, S2.15) on its own: reference Dice, Jaccard and, for course code,
    the reference inference agent. Call inside a test body only.

    The course starter gives run_test's loop finished; what it grades there is that the
    student's pieces it runs (single_volume_inference, Jaccard3d) are done. Until they are,
    the test skips: it neither gives nor takes points.
    """
    use_reference_metrics(code)
    if not is_course(code):
        return
    volume = np.zeros((1, COURSE_PATCH, COURSE_PATCH), dtype=np.float32)
    mask = np.ones((1, 2, 2), dtype=np.int64)
    for what, call in (("single_volume_inference",
                        lambda: agent_for(code, OracleModel()).single_volume_inference(volume)),
                       ("Jaccard3d",
                        lambda: code.import_module("utils.volume_stats").Jaccard3d(mask, mask))):
        if not_done(call):
            import pytest  # only a test body reaches this line

            pytest.skip(f"complete {what} first: run_test scores its results")
    use_reference_agent(code)


def not_done(call) -> bool:
    """True when ``call()`` hits a course stub: it returns None, raises NotImplementedError, or
    uses a variable the stub leaves unset (NameError). Any other failure is graded by the
    function's own TASK and does not count here."""
    try:
        return call() is None
    except (NotImplementedError, NameError):
        return True
    except Exception:  # a bug or a bad import, graded by its own TASK
        return False
