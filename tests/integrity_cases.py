"""Submissions written for the integrity tests: a course-style class and kit-style students.

Every line here was written for these tests; none comes from a real student or from the
course's starter. The "starter" below only has the course's layout and names (section2/src,
Config, Dice3d, med_reshape, UNetExperiment(...).run()), so that course-style submissions
have boilerplate to share, as real ones share the starter.

Honest students (alice, bob, oscar, peggy) fill the starter's TASKs each in their own way.
The others each carry one planted problem, named in CASES.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from grader.runtime.never_copied import copytree_ignore

REPO = Path(__file__).resolve().parents[1]
KIT_SKELETON = REPO / "section2" / "src"
SPLIT_MARK = "    # TASK: split the volumes by index into train, val and test\n"
RESHAPE_MARK = "    raise NotImplementedError('med_reshape is a TASK')\n"
TEST_VOLUMES = ("hippocampus_001.nii.gz", "hippocampus_004.nii.gz", "hippocampus_006.nii.gz")
LABEL_SHAPE = (6, 7, 5)  # [X, Y, Z] of the synthetic labels and predictions

# ---- the course-style starter: layout and names only, every body written here -------------
STARTER = {
    "section2/src/run_ml_pipeline.py": '''"""Train the hippocampus U-Net, test it and save results.json."""
import json
import os

from data_prep.HippocampusDatasetLoader import LoadHippocampusData
from experiments.UNetExperiment import UNetExperiment


class Config:
    """Settings of one run."""
    def __init__(self):
        self.name = "Basic_unet"
        self.root_dir = r"SET THE DATA FOLDER"
        self.n_epochs = 10
        self.learning_rate = 0.0002
        self.batch_size = 8
        self.patch_size = 64
        self.test_results_dir = "SET THE RESULTS FOLDER"


if __name__ == "__main__":
    settings = Config()
    data = LoadHippocampusData(settings.root_dir, settings.patch_size, settings.patch_size)
    keys = range(len(data))
    split = {}
''' + SPLIT_MARK + '''    exp = UNetExperiment(settings, split, data)
    exp.run()
    report = exp.run_test()
    report["config"] = dict(vars(settings))
    report_path = os.path.join(exp.out_dir, "results.json")
    with open(report_path, "w") as report_file:
        report_file.write(json.dumps(report, indent=2))
''',
    "section2/src/utils/volume_stats.py": '''"""Overlap metrics of two label volumes."""
import numpy as np


def Dice3d(a, b):
    raise NotImplementedError('Dice3d is a TASK')


def Jaccard3d(a, b):
    raise NotImplementedError('Jaccard3d is a TASK')
''',
    "section2/src/utils/utils.py": '''"""Helpers for images and logging."""
import numpy as np


def med_reshape(image, new_shape):
''' + RESHAPE_MARK + '''

def scale_to_bytes(image):
    """Stretch an array to 0..255 for saving as a picture."""
    low, high = float(np.min(image)), float(np.max(image))
    spread = high - low if high > low else 1.0
    return ((np.asarray(image, dtype=np.float64) - low) / spread * 255).astype(np.uint8)


def grid_of_slices(volume, columns=4):
    """Tile the first slices of a volume into one picture, row by row."""
    count = min(volume.shape[0], columns * columns)
    rows = (count + columns - 1) // columns
    height, width = volume.shape[1], volume.shape[2]
    canvas = np.zeros((rows * height, columns * width), dtype=volume.dtype)
    for index in range(count):
        top, left = (index // columns) * height, (index % columns) * width
        canvas[top:top + height, left:left + width] = volume[index]
    return canvas
''',
    "section2/src/experiments/UNetExperiment.py": '''"""Training, validation and testing of the U-Net."""
import os
import time

import numpy as np
import torch
import torch.nn.functional as F


class UNetExperiment:
    """One experiment: a model, its optimiser, the loaders and the result folder."""
    def __init__(self, config, split, dataset):
        self.name, self.n_epochs, self.epoch = config.name, config.n_epochs, 0
        self.split, self.dataset = split, dataset
        stamp = time.strftime("%Y-%m-%d_%H%M", time.gmtime())
        self.out_dir = os.path.join(config.test_results_dir, f"{stamp}_{self.name}")
        if not os.path.isdir(self.out_dir):
            os.makedirs(self.out_dir)
        self.device = torch.device("cpu" if not torch.cuda.is_available() else "cuda")
        self.model = None
        self.optimizer = None
        self.loss_function = torch.nn.CrossEntropyLoss(reduction="mean")

    def train(self):
        self.model.train()
        for index in self.split["train"]:
            volume = self.dataset[index]
            for position in range(volume["image"].shape[0]):
                image = torch.from_numpy(volume["image"][position][None, None]).float()
                target = torch.from_numpy(volume["seg"][position][None]).long()
                self.optimizer.zero_grad()
                logits = self.model(image.to(self.device))
                loss = self.loss_function(logits, target.to(self.device))
                loss.backward()
                self.optimizer.step()

    def validate(self):
        self.model.eval()
        losses = []
        with torch.no_grad():
            for index in self.split["val"]:
                volume = self.dataset[index]
                image = torch.from_numpy(volume["image"][:, None]).float()
                target = torch.from_numpy(volume["seg"]).long()
                logits = self.model(image.to(self.device))
                losses.append(F.cross_entropy(logits, target.to(self.device)).item())
        return float(np.mean(losses)) if losses else float("nan")

    def save_model_parameters(self):
        torch.save(self.model.state_dict(), os.path.join(self.out_dir, "model.pth"))

    def run(self):
        for epoch in range(self.n_epochs):
            self.epoch = epoch
            self.train()
            self.validate()
        self.save_model_parameters()
''',
}

# ---- what each student wrote ---------------------------------------------------------------
ALICE = {
    "volume_stats": '''"""Overlap metrics of two label volumes."""
import numpy as np


def _foreground(volume):
    return np.asarray(volume) > 0


def _check(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise Exception("Dice and Jaccard take 3-D volumes; shapes are {} and {}".format(a.shape, b.shape))
    if np.shape(a) != np.shape(b):
        raise Exception("Dice and Jaccard need volumes of one shape; shapes are {} and {}".format(a.shape, b.shape))


def Dice3d(a, b):
    _check(a, b)
    fa, fb = _foreground(a), _foreground(b)
    intersection = np.sum(fa & fb)
    both_sizes = np.sum(fa) + np.sum(fb)
    if not both_sizes:
        return 1.0
    return float(2.0 * intersection / both_sizes)


def Jaccard3d(a, b):
    _check(a, b)
    fa, fb = _foreground(a), _foreground(b)
    union = np.sum(fa | fb)
    if union == 0:
        return 1.0
    return float(np.sum(fa & fb) / union)


def Sensitivity(pred, gt):
    tp = np.sum(_foreground(pred) & _foreground(gt))
    fn = np.sum(~_foreground(pred) & _foreground(gt))
    return float(tp / (tp + fn)) if tp + fn else float("nan")


def Specificity(pred, gt):
    tn = np.sum(~_foreground(pred) & ~_foreground(gt))
    fp = np.sum(_foreground(pred) & ~_foreground(gt))
    return float(tn / (tn + fp)) if tn + fp else float("nan")
''',
    "reshape": '''    reshaped_image = np.zeros(new_shape, dtype=image.dtype)
    x, y, z = image.shape
    reshaped_image[:x, :y, :z] = image
    return reshaped_image
''',
    "split": '''    import numpy as np
    rng = np.random.default_rng(42)
    order = rng.permutation(len(data))
    n_train = int(0.7 * len(order))
    n_val = int(0.15 * len(order))
    split["train"] = order[:n_train].tolist()
    split["val"] = order[n_train:n_train + n_val].tolist()
    split["test"] = order[n_train + n_val:].tolist()
''',
}

BOB = {
    "volume_stats": '''"""Overlap metrics of two label volumes."""
import numpy as np


def Dice3d(a, b):
    """Dice of two label volumes; any non-zero label is hippocampus."""
    if a.ndim != 3 or b.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"need two 3D volumes of one shape, not {a.shape} and {b.shape}")
    pred = a != 0
    truth = b != 0
    denominator = np.count_nonzero(pred) + np.count_nonzero(truth)
    return 1.0 if denominator == 0 else 2 * np.count_nonzero(np.logical_and(pred, truth)) / denominator


def Jaccard3d(a, b):
    """Intersection over union of the two foregrounds."""
    dice = Dice3d(a, b)
    return dice / (2 - dice)
''',
    "reshape": '''    out = np.zeros(new_shape)
    out = out.astype(image.dtype)
    corner = tuple(slice(0, n) for n in image.shape)
    out[corner] = image
    return out
''',
    "split": '''    import random
    indices = list(keys)
    random.seed(7)
    random.shuffle(indices)
    first_cut, second_cut = round(len(indices) * .8), round(len(indices) * .9)
    split = {"train": indices[:first_cut], "val": indices[first_cut:second_cut],
             "test": indices[second_cut:]}
''',
}

OSCAR = {
    "volume_stats": '''"""Overlap metrics of two label volumes."""
import numpy as np


class VolumeShapeError(ValueError):
    pass


def Dice3d(a, b):
    if np.ndim(a) != 3 or np.ndim(b) != 3:
        raise VolumeShapeError("both volumes must be 3D")
    if np.shape(a) != np.shape(b):
        raise VolumeShapeError("volumes differ in shape: %s vs %s" % (np.shape(a), np.shape(b)))
    x = np.where(a > 0, 1, 0).ravel()
    y = np.where(b > 0, 1, 0).ravel()
    total = x.sum() + y.sum()
    if not total:
        return 1.0
    return 2.0 * float(np.dot(x, y)) / float(total)


def Jaccard3d(a, b):
    if np.ndim(a) != 3 or np.ndim(b) != 3 or np.shape(a) != np.shape(b):
        raise VolumeShapeError("need two 3D volumes of one shape")
    x = np.where(a > 0, 1, 0).ravel()
    y = np.where(b > 0, 1, 0).ravel()
    both = float(np.dot(x, y))
    either = float(np.maximum(x, y).sum())
    return 1.0 if either == 0 else both / either
''',
    "reshape": '''    pads = [(0, target - size) for size, target in zip(image.shape, new_shape)]
    return np.pad(image, pads, mode="constant", constant_values=0)
''',
    "split": '''    import numpy as np
    shuffled = np.random.RandomState(2020).permutation(np.arange(len(data)))
    cuts = [int(len(shuffled) * 0.6), int(len(shuffled) * 0.8)]
    train_part, val_part, test_part = np.split(shuffled, cuts)
    split["train"], split["val"], split["test"] = list(train_part), list(val_part), list(test_part)
''',
}

PEGGY = {
    "volume_stats": '''"""Overlap metrics of two label volumes."""
import numpy as np


def _binary(volume, name):
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(name + " is not a 3D volume")
    return volume.astype(bool)


def Jaccard3d(a, b):
    left, right = _binary(a, "a"), _binary(b, "b")
    if left.shape != right.shape:
        raise ValueError("shapes differ")
    overlap = np.logical_and(left, right).sum()
    combined = np.logical_or(left, right).sum()
    if combined == 0:
        return 1.0
    return overlap / combined


def Dice3d(a, b):
    jaccard = Jaccard3d(a, b)
    return 2 * jaccard / (1 + jaccard)
''',
    "reshape": '''    canvas = np.zeros(new_shape, image.dtype)
    canvas[tuple(map(slice, image.shape))] = image
    return canvas
''',
    "split": '''    import numpy as np
    volumes = np.random.default_rng(1).permutation(len(data))
    test_count = len(volumes) // 5
    split["test"] = volumes[:test_count]
    split["val"] = volumes[test_count:2 * test_count]
    split["train"] = volumes[2 * test_count:]
''',
}

# Binarises the caller's arrays in place, then counts: the metric is right, the arrays are not.
IVAN_VOLUME_STATS = '''"""Overlap metrics of two label volumes."""
import numpy as np


def Dice3d(a, b):
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError("Dice3d needs two 3D volumes of one shape")
    a[a > 0] = 1
    b[b > 0] = 1
    size = a.sum() + b.sum()
    return 1.0 if size == 0 else 2.0 * (a * b).sum() / size


def Jaccard3d(a, b):
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError("Jaccard3d needs two 3D volumes of one shape")
    same = np.logical_and(a, b).sum()
    either = np.logical_or(a, b).sum()
    return 1.0 if either == 0 else same / either
'''

# dave: alice's work with every name of her own changed and the functions in another order.
RENAMES = {"_foreground": "_mask_of", "_check": "_validate_pair", "fa": "mask_a",
           "fb": "mask_b", "intersection": "overlap", "both_sizes": "sizes", "union": "combined",
           "tp": "true_pos", "fn": "false_neg", "tn": "true_neg", "fp": "false_pos",
           "reshaped_image": "padded", "rng": "generator", "order": "shuffled",
           "n_train": "train_count", "n_val": "val_count"}


def renamed(text: str) -> str:
    """``text`` with every name of RENAMES replaced (whole words only)."""
    return re.sub(r"\b(" + "|".join(map(re.escape, RENAMES)) + r")\b",
                  lambda match: RENAMES[match.group(1)], text)


def reordered(module: str) -> str:
    """A module's top-level functions in reverse order (the docstring and imports first)."""
    head, *functions = re.split(r"\n\n\n(?=def )", module.strip("\n"))
    return "\n\n\n".join([head, *reversed(functions)]) + "\n"


DAVE = {"volume_stats": reordered(renamed(ALICE["volume_stats"])),
        "reshape": renamed(ALICE["reshape"]), "split": renamed(ALICE["split"])}


def write(folder: Path, files: dict[str, str]) -> None:
    """Write {relative path: text} under ``folder``."""
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)


def write_starter(folder: Path) -> Path:
    """The course-style starter (what the instructor hands out) in ``folder``."""
    write(folder, STARTER)
    return folder


def course_submission(folder: Path, work: dict[str, str] | None = None,
                      training_call: str = "    exp.run()\n") -> Path:
    """The starter with a student's work filled in (None: left as handed out)."""
    files = dict(STARTER)
    pipeline = files["section2/src/run_ml_pipeline.py"].replace("    exp.run()\n",
                                                                 training_call)
    if work is not None:
        pipeline = pipeline.replace(SPLIT_MARK, work["split"])
        files["section2/src/utils/utils.py"] = files["section2/src/utils/utils.py"].replace(
            RESHAPE_MARK, work["reshape"])
        files["section2/src/utils/volume_stats.py"] = work["volume_stats"]
    files["section2/src/run_ml_pipeline.py"] = pipeline
    write(folder, files)
    return folder


def results_payload(dice: dict[str, float], root_dir: str, results_dir: str) -> dict:
    """A consistent results.json: Jaccard = D / (2 - D), means over the listed volumes."""
    stats = [{"filename": name, "dice": value, "jaccard": value / (2 - value)}
             for name, value in dice.items()]
    return {"volume_stats": stats,
            "overall": {"mean_dice": float(np.mean([row["dice"] for row in stats])),
                        "mean_jaccard": float(np.mean([row["jaccard"] for row in stats]))},
            "config": {"name": "Basic_unet", "root_dir": root_dir, "n_epochs": 10,
                       "test_results_dir": results_dir}}


def write_results(folder: Path, payload: dict, session: str = "2026-11-20_1412_Basic_unet",
                  extra: dict[str, object] | None = None) -> Path:
    """Write a session folder under section2/out/results; return its results.json."""
    session_dir = folder / "section2" / "out" / "results" / session
    session_dir.mkdir(parents=True, exist_ok=True)
    path = session_dir / "results.json"
    path.write_text(json.dumps(payload, indent=2))
    for name, content in (extra or {}).items():
        (session_dir / name).write_text(json.dumps(content, indent=2))
    return path


def student_dice(seed: int) -> dict[str, float]:
    """Plausible per-volume test Dice of one student's run (0.85 to 0.92)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.85, 0.92, len(TEST_VOLUMES))
    return {name: round(float(value), 6)
            for name, value in zip(TEST_VOLUMES, values, strict=True)}


def honest_course_class(root: Path) -> dict[str, Path]:
    """Four students who share only the starter, each with their own results."""
    students = {"alice": ALICE, "bob": BOB, "oscar": OSCAR, "peggy": PEGGY}
    folders = {}
    for seed, (name, work) in enumerate(students.items()):
        folders[name] = course_submission(root / name, work)
        write_results(folders[name], results_payload(
            student_dice(seed), f"/home/{name}/nd320/data/TrainingSet",
            f"/home/{name}/nd320/section2/out"))
    return folders


def planted_course_class(root: Path) -> dict[str, Path]:
    """The honest class plus one student per planted problem (see CASES)."""
    folders = honest_course_class(root)
    shutil.copytree(folders["alice"], root / "carol")  # a verbatim copy, results too
    folders["carol"] = root / "carol"
    folders["dave"] = course_submission(root / "dave", DAVE)
    write_results(folders["dave"], results_payload(student_dice(11), "/home/dave/data",
                                                   "/home/dave/out"))
    folders["erin"] = course_submission(root / "erin")  # hands in bob's results.json
    bob_results = next((folders["bob"] / "section2" / "out").rglob("results.json"))
    write_results(folders["erin"], json.loads(bob_results.read_text()))
    shutil.copyfile(bob_results, next((folders["erin"] / "section2").rglob("results.json")))
    folders["frank"] = course_submission(root / "frank")
    impossible = results_payload(student_dice(12), "/home/frank/data", "/home/frank/out")
    impossible["volume_stats"][0]["dice"] = 1.467  # an old Dice that forgot to halve
    impossible["overall"] = {"mean_dice": 1.467, "mean_jaccard": 2.80}
    write_results(folders["frank"], impossible)
    folders["heidi"] = course_submission(root / "heidi", training_call="    # exp.run()\n")
    write_results(folders["heidi"], results_payload(student_dice(13), "/home/heidi/data",
                                                    "/home/heidi/out"))
    folders["ivan"] = course_submission(root / "ivan")
    write(folders["ivan"], {"section2/src/utils/volume_stats.py": IVAN_VOLUME_STATS})
    return folders


def kit_submission(folder: Path) -> Path:
    """A copy of the kit's skeleton, as a kit student starts."""
    shutil.copytree(KIT_SKELETON, folder / "section2" / "src", ignore=copytree_ignore())
    return folder


def fake_data_set(root: Path, names: tuple[str, ...] = TEST_VOLUMES) -> Path:
    """A TrainingSet with images/ and labels/: synthetic label maps [6, 7, 5], values {0, 1, 2}."""
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        seg = np.random.default_rng(seed).choice(3, size=LABEL_SHAPE).astype(np.uint8)
        nib.save(nib.Nifti1Image(seg, np.eye(4)), root / "labels" / name)
        nib.save(nib.Nifti1Image(seg.astype(np.float32), np.eye(4)), root / "images" / name)
    return root
