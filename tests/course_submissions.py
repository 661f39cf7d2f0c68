"""Course-style example submissions for the grader's tests, built at test time.

``tests/fixtures/course_submission`` is a finished submission written in the public course
starter's layout and style (bare ``# TASK:`` comments, the split in ``run_ml_pipeline.py``'s
``__main__``, ``single_volume_inference_unpadded`` in ``section3/src/inference/``), with the
conventions course students use: ``image / max`` normalisation, a float64 ``med_reshape``, a
float ``seg`` tensor cast in ``train()``, no ``torch.no_grad()`` in inference, a Jaccard of 0
for two empty volumes, an unpadded prediction left at the padded size.
``tests/fixtures/course_starter`` is the same layout unfilled, its stubs shaped as the course
starter's (``# <YOUR CODE HERE>``, a bare ``return``, a bare ``raise NotImplementedError``,
placeholder paths). Both are written for these tests; neither is course or student code.

From the finished one, ``VARIANTS`` build other correct submissions (scikit-learn's split,
code that hard-codes CUDA) and ``MISTAKES`` build submissions with one mistake each, every
one a mistake the course's graders met. The U-Net is the kit's own (``solution/``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FINISHED = FIXTURES / "course_submission"
STARTER = FIXTURES / "course_starter"
NETWORK = REPO / "solution" / "section2" / "src" / "networks" / "RecursiveUNet.py"
SECTION2 = Path("section2") / "src"
SECTION3 = Path("section3") / "src"


@dataclass(frozen=True)
class Change:
    """One edit of the finished course submission: ``old`` (occurring once) becomes ``new``.

    Attributes:
        file: relative to the submission folder, e.g. "section2/src/utils/volume_stats.py".
    """

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class CourseSubmission:
    """A course-style submission: the finished one with ``changes``.

    Attributes:
        name: the folder name.
        task: the TASK id the mistake belongs to; "" for a correct submission.
        mistake: what is wrong (or what is different, for a correct variant), in words.
    """

    name: str
    task: str
    mistake: str
    changes: tuple[Change, ...] = ()


def _pipeline(old: str, new: str) -> Change:
    return Change(f"{SECTION2}/run_ml_pipeline.py", old, new)


def _file(path: str, old: str, new: str) -> Change:
    return Change(f"{SECTION2}/{path}", old, new)


SPLIT_60_20_20 = '''    order = np.random.permutation(len(keys))
    n_train = int(0.6 * len(order))
    n_val = int(0.2 * len(order))
    split["train"] = order[:n_train]
    split["val"] = order[n_train:n_train + n_val]
    split["test"] = order[n_train + n_val:]
'''
INFERENCE_CALL = "            prediction = self.model(slc.to(self.device))\n"
JACCARD_BODY = '''    intersection = np.sum(np.logical_and(a > 0, b > 0))
    union = np.sum(np.logical_or(a > 0, b > 0))
'''
UNPADDED_BODY = '''        volume = volume / np.max(volume)
        padded = med_reshape(volume, (volume.shape[0], self.patch_size, self.patch_size))
        return self.single_volume_inference(padded)
'''
TRAIN_TENSORS = '''            data = batch["image"].float().to(self.device)
            target = batch["seg"].long().to(self.device)

            prediction = self.model(data)
'''

VARIANTS = (
    CourseSubmission("course_finished", "", "the finished course-style submission"),
    CourseSubmission(
        "course_sklearn_cuda", "",
        "70/15/15 split with scikit-learn, CUDA hard-coded (.cuda(), torch.cuda.FloatTensor, "
        ".to('cuda')), min-max normalisation, unpadded inference in section 2 cropping back",
        (_pipeline("import numpy as np\n",
                   "import numpy as np\nfrom sklearn.model_selection import train_test_split\n"),
         _pipeline(SPLIT_60_20_20, '''\
    train_keys, rest = train_test_split(list(keys), test_size=0.3, random_state=42)
    val_keys, test_keys = train_test_split(rest, test_size=0.5, random_state=42)
    split["train"], split["val"], split["test"] = train_keys, val_keys, test_keys
'''),
         _file("data_prep/HippocampusDatasetLoader.py", "image = image / np.max(image)",
               "image = (image - np.min(image)) / (np.max(image) - np.min(image))"),
         _file("experiments/UNetExperiment.py", TRAIN_TENSORS, '''\
            data = batch["image"].type(torch.cuda.FloatTensor)
            target = batch["seg"].long().cuda()

            prediction = self.model(data)
'''),
         _file("experiments/UNetExperiment.py",
               "        self.model = UNet(num_classes=3).to(self.device)\n",
               "        self.model = UNet(num_classes=3).cuda()\n"),
         _file("inference/UNetInferenceAgent.py", INFERENCE_CALL,
               "            prediction = self.model(slc.to(\"cuda\"))\n"),
         _file("inference/UNetInferenceAgent.py", "    def single_volume_inference(self, volume):",
               '''\
    def single_volume_inference_unpadded(self, volume):
        """
        Predicts a volume of any size: pads it, predicts, crops back
        """
        image = (volume - volume.min()) / (volume.max() - volume.min())
        padded = med_reshape(image, (image.shape[0], self.patch_size, self.patch_size))
        return self.single_volume_inference(padded)[:, :volume.shape[1], :volume.shape[2]]

    def single_volume_inference(self, volume):'''))),
)

MISTAKES = (
    CourseSubmission("split_overlapping", "S2.02", "val and test share volumes",
                     (_pipeline('split["test"] = order[n_train + n_val:]',
                                'split["test"] = order[n_train:]'),)),
    CourseSubmission("run_commented_out", "S2.02", "exp.run() commented out in __main__",
                     (_pipeline("    exp.run()\n", "    # exp.run()\n"),)),
    CourseSubmission("per_slice_normalisation", "S2.03", "each slice scaled by its own maximum",
                     (_file("data_prep/HippocampusDatasetLoader.py",
                            "image = image / np.max(image)",
                            "image = image / np.max(image, axis=(1, 2), keepdims=True)"),)),
    CourseSubmission("padding_bottom_right", "S2.04", "med_reshape pads at the start, not the end",
                     (_file("utils/utils.py",
                            "reshaped_image[:image.shape[0], :image.shape[1], :image.shape[2]] = "
                            "image",
                            "reshaped_image[-image.shape[0]:, -image.shape[1]:, "
                            "-image.shape[2]:] = image"),)),
    CourseSubmission("labels_normalised", "S2.05", "labels divided by their maximum too",
                     (_file("data_prep/HippocampusDatasetLoader.py",
                            "        image = image / np.max(image)\n",
                            "        image = image / np.max(image)\n"
                            "        label = label / np.max(label)\n"),)),
    CourseSubmission("slices_of_the_wrong_volume", "S2.06",
                     "__getitem__ indexes volumes by the slice number",
                     (_file("data_prep/SlicesDataset.py", "volume = self.data[slc[0]]",
                            "volume = self.data[slc[1] % len(self.data)]"),)),
    CourseSubmission("loss_on_softmax", "S2.07", "training loss on the softmax output",
                     (_file("experiments/UNetExperiment.py",
                            "            loss = self.loss_function(prediction, target[:, 0, :, :])"
                            "\n\n            # TASK: What",
                            "            loss = self.loss_function(prediction_softmax, "
                            "target[:, 0, :, :])\n\n            # TASK: What"),)),
    CourseSubmission("validation_on_training_data", "S2.08",
                     "validation loss computed on the training loader",
                     (_file("experiments/UNetExperiment.py",
                            "for batch_number, batch in enumerate(self.val_loader):",
                            "for batch_number, batch in enumerate(self.train_loader):"),)),
    CourseSubmission("argmax_over_width", "S2.10", "the mask is the argmax over the wrong axis",
                     (_file("inference/UNetInferenceAgent.py",
                            "masks[i] = torch.argmax(prediction, dim=1)[0]",
                            "masks[i] = torch.argmax(prediction, dim=3)[0, 0][:, None]"),)),
    CourseSubmission("unpadded_without_padding", "S2.11", "the volume goes to the model unpadded",
                     (Change(f"{SECTION3}/inference/UNetInferenceAgent.py", UNPADDED_BODY,
                             "        return self.single_volume_inference(volume / "
                             "np.max(volume))\n"),)),
    CourseSubmission("jaccard_distance", "S2.13", "Jaccard3d is scipy's Jaccard distance",
                     (_file("utils/volume_stats.py", "import numpy as np\n",
                            "import numpy as np\nfrom scipy.spatial import distance\n"),
                      _file("utils/volume_stats.py", JACCARD_BODY + '''    if union == 0:
        return 0.
    return float(intersection) / float(union)
''', '''    return distance.jaccard((a > 0).ravel(), (b > 0).ravel())
'''))),
    CourseSubmission("jaccard_overwrites_inputs", "S2.13",
                     "Jaccard3d binarises its input arrays in place",
                     (_file("utils/volume_stats.py", JACCARD_BODY, '''    a[a > 0] = 1
    b[b > 0] = 1
''' + JACCARD_BODY),)),
    CourseSubmission("volume_stats_bad_import", "S2.13",
                     "volume_stats.py imports a package the grader lacks",
                     (_file("utils/volume_stats.py", "import numpy as np\n",
                            "import numpy as np\nimport cv2\n"),)),
)


def build(submission: CourseSubmission, dest: Path) -> Path:
    """Write ``submission`` as a folder ``dest`` (section2/src, section3/src) and return it.

    Raises:
        ValueError: when a change's ``old`` text does not occur exactly once.
    """
    shutil.copytree(FINISHED, dest)
    for change in submission.changes:
        path = dest / change.file
        text = path.read_text()
        if text.count(change.old) != 1:
            raise ValueError(f"{submission.name}: {change.old!r} occurs "
                             f"{text.count(change.old)} times in {change.file}")
        path.write_text(text.replace(change.old, change.new))
    return add_network(dest)


def build_starter(dest: Path) -> Path:
    """Write the unfilled course-style starter as a folder ``dest`` and return it."""
    shutil.copytree(STARTER, dest)
    return add_network(dest)


def add_network(folder: Path) -> Path:
    """Give a course-style submission the U-Net (the course hands it out finished)."""
    target = folder / SECTION2 / "networks" / "RecursiveUNet.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NETWORK, target)
    return folder
