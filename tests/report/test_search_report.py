"""The search report (issue 14): `cnnlab report STUDY_DIR` writes one page with the pair scatter,
metric per parameter, best so far, border warnings, top trials linking to their runs and
importances; headless Chromium renders it; optuna-dashboard serves the same study."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.search.runner import run_search
from cnnlab.search.spec import load_search
from tests.report.test_browser_report import CHROMIUM, near, screenshot
from tests.search.test_search_run import search_file

VIRIDIS_YELLOW = np.array([253, 231, 37])  # the top of the scatter's colour bar
VIRIDIS_TEAL = np.array([33, 145, 140])    # its middle


@pytest.fixture(scope="module")
def study(tiny_mnist_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("search-report")
    spec = load_search(search_file(folder, tiny_mnist_dir, trials=6))
    spec.space["optim.l2"] = {"log_uniform": [1.0e-6, 1.0e-2]}  # two log-scale parameters: a scatter
    run_search(spec, folder / "study", "tiny", echo=lambda line: None, progress=False)
    return folder / "study"


def test_report_of_a_study(study, capsys):
    assert main(["report", str(study)]) == 0
    assert "wrote" in capsys.readouterr().out
    html = (study / "report.html").read_text()
    for heading in ("Pairs of parameters", "val_acc against each parameter", "Best so far", "Border warnings",
                    "Top trials", "Parameter importances"):
        assert heading in html, heading
    assert html.count('<img alt="') == 3
    links = [line.split('href="')[1].split('"')[0] for line in html.split("<a ")[1:] if 'href="stage' in line]
    assert len(links) == 6 and all((study / link).exists() for link in links)  # each trial's run directory


def test_figures_are_also_written_as_png_files(study, tmp_path):
    from PIL import Image

    assert main(["report", str(study), "--out", str(tmp_path / "r.html"), "--figures", str(tmp_path / "figs")]) == 0
    files = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert files == ["stage1-best-so-far.png", "stage1-metric.png", "stage1-pairs.png"]
    assert all(Image.open(tmp_path / "figs" / f).size[0] > 300 for f in files)


def test_report_json_and_bad_directories(study, tmp_path, capsys):
    assert main(["report", str(study), "--json", "--out", str(tmp_path / "r.html")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"out": str(tmp_path / "r.html"), "stages": 1, "figures": 3}
    assert main(["report", str(study), str(study)]) == 2
    assert "give one STUDY_DIR" in capsys.readouterr().err
    shutil.copy(study / "search.yaml", tmp_path / "search.yaml")  # a study dir without its journal
    assert main(["report", str(tmp_path)]) == 2
    assert "give --storage URL" in capsys.readouterr().err


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs headless chromium (.ci/run installs it)")
def test_chromium_renders_the_search_report(study, tmp_path):
    page = tmp_path / "search.html"
    assert main(["report", str(study), "--out", str(page)]) == 0
    shot = screenshot(page, tmp_path / "shot.png", tmp_path / "profile", height=3500)
    assert near(shot, VIRIDIS_YELLOW, tolerance=20) > 100  # the top of the colour bar (a blank page: 0)
    assert near(shot, VIRIDIS_TEAL, tolerance=20) > 100    # its middle
    assert near(shot, np.array([31, 119, 180])) > 300       # metric-per-parameter points


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_serves_the_study(study):
    pytest.importorskip("optuna_dashboard")
    port = _free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")  # the console script beside python
    server = subprocess.Popen([str(dashboard), str(study / "study.journal"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, body = time.time() + 60, None
        while time.time() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, server.stderr.read() if server.poll() is not None else "no answer"
        names = [s["study_name"] for s in body["study_summaries"]]
        assert names == ["tiny.stage1"]
    finally:
        server.terminate()
        server.wait(timeout=30)
