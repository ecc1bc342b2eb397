"""cnnlab predict --sliding (issue 17): the FC-to-conv network scores every window of a larger
image; the probabilities are the softmax of the class scores averaged over the positions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import load_data
from cnnlab.models.fullconv import sliding_reference
from cnnlab.train.inference import load_trained


@pytest.fixture(scope="module")
def trained(pretrained_run):
    return load_trained(pretrained_run, "best", "cpu")


def test_sliding_averages_the_scores_of_every_window(pretrained_run, trained, tmp_path, capsys):
    digit = load_data(trained.cfg.data, trained.cfg.seed).test.images[0, 0].numpy()
    canvas = np.zeros((36, 44), np.uint8)  # a real test digit on a larger black canvas
    canvas[3:31, 9:37] = digit
    Image.fromarray(canvas).save(tmp_path / "big.png")
    assert main(["predict", str(pretrained_run), str(tmp_path / "big.png"), "--sliding", "-k", "5",
                 "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["positions"] == [3, 5]  # (36 - 28)/4 + 1 rows, (44 - 28)/4 + 1 columns
    x = torch.from_numpy(canvas)[None, None]
    with torch.no_grad():
        scores = sliding_reference(trained.model, trained.preprocess(x), (28, 28), 4)
    want = scores.mean((2, 3)).softmax(1)[0]
    got = {t["class"]: t["probability"] for t in result["top"]}
    for i, name in enumerate(trained.classes):
        assert got[name] == pytest.approx(float(want[i]), abs=1e-5)


def test_sliding_on_the_training_size_is_the_plain_prediction(pretrained_run, trained, tmp_path, capsys):
    digit = load_data(trained.cfg.data, trained.cfg.seed).test.images[1, 0].numpy()
    Image.fromarray(digit).save(tmp_path / "digit.png")
    runs = []
    for extra in ([], ["--sliding"], ["--sliding", "--size", "28x28"]):
        assert main(["predict", str(pretrained_run), str(tmp_path / "digit.png"), "-k", "5", "--json", *extra]) == 0
        runs.append({t["class"]: t["probability"] for t in json.loads(capsys.readouterr().out)[0]["top"]})
    for other in runs[1:]:
        assert other == pytest.approx(runs[0], abs=1e-6)
    assert main(["predict", str(pretrained_run), str(tmp_path / "digit.png"), "--sliding", "--size", "20x20"]) == 2
    assert main(["predict", str(pretrained_run), str(tmp_path / "digit.png"), "--size", "40x40"]) == 2
