"""The report in a real browser: headless Chromium loads the page from a file:// URL and its
screenshot shows the plots (matplotlib's line colours and the confusion matrix's blues).
Needs /usr/bin/chromium (Debian `chromium`; .ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnnlab.report import build_report
from tests.report.test_report_html import blank, trained_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason="needs headless chromium (apt-get install chromium; .ci/run does)")

C0_BLUE = np.array([31, 119, 180])     # matplotlib's first line colour
CM_DARK_BLUE = np.array([8, 48, 107])  # the top of the 'Blues' colormap (confusion matrix diagonal)


def screenshot(page: Path, out: Path, profile: Path, height: int) -> np.ndarray:
    from PIL import Image

    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size=1280,{height}",
           "--virtual-time-budget=5000", page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def near(image: np.ndarray, colour: np.ndarray, tolerance: int = 12) -> int:
    return int((np.abs(image - colour).max(axis=2) <= tolerance).sum())


def test_chromium_renders_the_report_with_its_plots(tmp_path_factory, tmp_path):
    page = tmp_path / "report.html"
    build_report([trained_run(tmp_path_factory, "lenet")], page, device="cpu")
    shot = screenshot(page, tmp_path / "shot.png", tmp_path / "profile", height=6000)

    assert shot.shape[:2] == (6000, 1280)
    assert not blank(shot.astype(np.uint8))
    # Plots are drawn: line pixels in matplotlib blue, and the confusion matrix's dark blue.
    assert near(shot, C0_BLUE) > 2000
    assert near(shot, CM_DARK_BLUE) > 500
    # The page is not a column of broken-image icons: the rendered content spans the width of
    # the plots and most of the height.
    content_rows = (np.abs(shot - 255).max(axis=2) > 30).any(axis=1)
    assert content_rows.mean() > 0.5
