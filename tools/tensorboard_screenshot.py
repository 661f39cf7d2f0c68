"""Screenshot TensorBoard's dashboards as a student sees them, in headless Chromium.

Checks by eye what the pipeline's logging looks like in a real browser: one run, train and
validation loss in one chart, validation Dice without scrolling. Optionally trains a short
session first, starts TensorBoard on 127.0.0.1 only, saves one PNG per dashboard and stops
TensorBoard again. Needs Chromium (Debian: ``apt-get install chromium``), so CI does not run
it; tests/test_tensorboard_logging.py checks the event files themselves. From the kit's root::

    python tools/tensorboard_screenshot.py --data-dir ../shared/data/hippocampus/TrainingSet
    python tools/tensorboard_screenshot.py --logdir solution/section2/src/runs --out-dir /tmp/tb

then look at ``OUT_DIR/<dashboard>.png``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "solution" / "section2" / "src" / "run_ml_pipeline.py"
# A short real session: enough batches per epoch for a loss curve, done in about a minute.
TRAINING_FLAGS = ("--preset", "cpu", "--epochs", "3", "--max-volumes", "30")
# Dashboards to shoot, as in TensorBoard's URL fragment ("" is the one it opens first);
# "custom_scalars" is the address the READMEs give students (smoothing off, so that the few
# validation points show as logged).
DASHBOARDS = {"default": "", "custom_scalars": "#custom_scalars&_smoothingWeight=0",
              "scalars": "#scalars", "images": "#images"}
# Headless Chromium captures no WebGL canvas, so the Time Series dashboard's charts would
# come out empty; TensorBoard's forceSVG flag draws the same data as SVG.
PAGE_QUERY = "?forceSVG=true"
WINDOW_PX = (1280, 900)  # a laptop browser window
SERVER_START_S = 60.0  # TensorBoard loads its plugins and the event files in a few seconds
RENDER_MS = 15000  # Chromium's virtual time for the page's scripts to fetch and draw charts
BROWSER_TIMEOUT_S = 120.0
POLL_S = 0.5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_chromium() -> str:
    """The Chromium executable.

    Raises:
        FileNotFoundError: when neither ``chromium`` nor ``chromium-browser`` is on PATH.
    """
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("chromium is not on PATH; on Debian: apt-get install chromium")


def train_short_session(data_dir: Path, work_dir: Path) -> Path:
    """Train TRAINING_FLAGS on ``data_dir`` into ``work_dir``; returns its TensorBoard folder.

    Raises:
        subprocess.CalledProcessError: when the pipeline fails.
    """
    runs = work_dir / "runs"
    subprocess.run([sys.executable, str(PIPELINE), *TRAINING_FLAGS, "--data-dir",
                    str(data_dir), "--test-results-dir", str(work_dir / "out"), "--tensorboard-dir",
                    str(runs)], cwd=PIPELINE.parent, check=True)
    return runs


def wait_for_tensorboard(url: str, server: subprocess.Popen) -> None:
    """Wait until TensorBoard at ``url`` lists at least one run.

    Raises:
        RuntimeError: when the server exits or lists no run within SERVER_START_S.
    """
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"tensorboard exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/data/runs", timeout=POLL_S * 4) as response:
                if response.read().strip() not in (b"", b"[]"):
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"tensorboard at {url} listed no run within {SERVER_START_S:.0f} s")


def screenshot(chromium: str, url: str, path: Path) -> None:
    """Save Chromium's headless rendering of ``url`` as the PNG ``path``.

    Raises:
        RuntimeError: when Chromium writes no file.
    """
    width, height = WINDOW_PX
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--window-size={width},{height}",
                    f"--virtual-time-budget={RENDER_MS}", f"--screenshot={path}", url],
                   check=False, capture_output=True, timeout=BROWSER_TIMEOUT_S)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url} to {path}")


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, produce the logs if asked, and screenshot every dashboard."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--logdir", type=Path,
                        help="an existing TensorBoard log folder (default: none)")
    source.add_argument("--data-dir", type=Path,
                        help="train a short session on this data first: "
                             f"{' '.join(TRAINING_FLAGS)} (default: none)")
    parser.add_argument("--out-dir", type=Path, default=Path("tensorboard_screenshots"),
                        help="folder for the PNGs (default: tensorboard_screenshots)")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tensorboard_screenshot_") as work:
        logdir = args.logdir or train_short_session(args.data_dir, Path(work))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir",
                                   str(logdir), "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_tensorboard(url, server)
            for name, fragment in DASHBOARDS.items():
                path = args.out_dir / f"{name}.png"
                screenshot(chromium, f"{url}/{PAGE_QUERY}{fragment}", path)
                print(f"{name}: {path}")
        finally:
            server.terminate()
            server.wait(timeout=SERVER_START_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
