#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image. The zip's files
# sit in /autograder/source. Everything goes into a virtual environment, so the script works
# whether or not the base image's Python lets pip install system-wide.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

apt-get update
apt-get install -y python3 python3-pip python3-venv procps
# The unprivileged user that student code runs as (run_autograder, grader/runtime/containment.py).
id -u student >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin student
python3 -m venv /autograder/venv
PIP=/autograder/venv/bin/pip
"$PIP" install --upgrade pip

# The CPU build of torch first: requirements.txt pins the same version, which pip then finds
# installed instead of fetching the much larger CUDA build.
"$PIP" install "torch==@TORCH_VERSION@" --index-url https://download.pytorch.org/whl/cpu
"$PIP" install -r /autograder/source/requirements.txt

# The hippocampus data (MSD Task04, CC BY-SA 4.0) in /autograder/source/data/TrainingSet,
# where the grader looks for it. A zip built with `tools/release.py --data DIR` ships the copy
# the real-data tests were written for (the course's), checked here against its SHA256SUMS;
# otherwise the MSD release is downloaded, and the tests that expect the course copy's misfits
# are skipped or fail for every student (grader/README.md, "Data").
if [ -f /autograder/source/data/SHA256SUMS ]; then
    (cd /autograder/source/data/TrainingSet && sha256sum --check --quiet ../SHA256SUMS)
else
    /autograder/venv/bin/python /autograder/source/tools/get_data.py
fi
