"""The search file (issue 14): every distribution parsed, every bad space refused before a trial
runs, naming the key; checked without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnnlab.errors import ConfigError
from cnnlab.search.spec import check_against_config, load_search, parse_param

GOOD = """
base: lenet5-mnist
space:
  optim.lr: {log_uniform: [1.0e-6, 1.0e-3]}
  optim.l2: {uniform: [0.0, 0.01]}
  model.keep: {choice: [[0.5], [0.8]]}
stages: [{trials: 3, train.epochs: 1}]
"""


def _write(tmp_path, text: str):
    path = tmp_path / "search.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("value, kind, low, high", [
    ({"log_uniform": [1e-6, 1e-3]}, "log_uniform", 1e-6, 1e-3),
    ({"uniform": [0.5, 1]}, "uniform", 0.5, 1.0),
    ({"int": [1, 8]}, "int", 1, 8),
    ({"int_log2": [16, 256]}, "int_log2", 16, 256),
])
def test_numeric_distributions(value, kind, low, high):
    p = parse_param("k.x", value)
    assert (p.kind, p.low, p.high, p.numeric) == (kind, low, high, True)
    assert p.log == (kind in ("log_uniform", "int_log2"))


def test_unit_position_is_in_log_units_for_log_ranges():
    p = parse_param("optim.lr", {"log_uniform": [1e-6, 1e-2]})
    assert p.to_unit(1e-4) == pytest.approx(0.5)
    assert parse_param("x.y", {"uniform": [0, 10]}).to_unit(2.5) == pytest.approx(0.25)


@pytest.mark.parametrize("value, message", [
    ({"log_uniform": [1e-3, 1e-6]}, "empty or inverted range"),
    ({"uniform": [1, 1]}, "empty or inverted range"),
    ({"log_uniform": [0, 1]}, "a log range needs low > 0"),
    ({"int": [1.5, 4]}, "bounds must be integers"),
    ({"int_log2": [16, 100]}, "powers of two"),
    ({"log_uniformm": [1, 2]}, "Did you mean 'log_uniform'"),
    ({"choice": []}, "non-empty list"),
    ({"choice": [1, 1]}, "lists a value twice"),
    ({"uniform": [0]}, "needs [low, high]"),
    ({"uniform": [0, 1], "int": [0, 1]}, "give one distribution"),
    ({"uniform": [0, ".inf"]}, "needs [low, high]"),
])
def test_bad_distributions_name_the_key(value, message):
    with pytest.raises(ConfigError, match="space.optim.lr") as info:
        parse_param("optim.lr", value)
    assert message in str(info.value)


@pytest.mark.parametrize("edit, message", [
    ("space:\n  optim.lrr: {log_uniform: [1.0e-6, 1.0e-3]}\n", "unknown key 'optim.lrr'"),
    ("space:\n  optim.lr: {log_uniform: [-1.0, 1.0e-3]}\n", "a log range needs low > 0"),
    ("space:\n  optim.lr: {log_uniform: [1.0, 100.0]}\n  optim.momentum: {uniform: [0.5, 1.5]}\n",
     "space.optim.momentum = 1.5"),
    ("space:\n  optim.rho: {uniform: [0.5, 0.9]}\n", "optim.rho does not apply to optimizer 'sgd'"),
    ("space: {}\n", "the space is empty"),
    ("samplerr: tpe\n", "unknown key 'samplerr'"),
    ("stages: [{trials: 0}]\n", "stages.0.trials"),
    ("stages: [{trials: 2, narrow: 2}]\n", "cannot narrow"),
    ("stages: [{trials: 2, epochs: 3}]\n", "stages[0].epochs"),
    ("stages: [{trials: 2, train.epochz: 3}]\n", "unknown key 'train.epochz'"),
    ("stages: [{trials: 2, optim.lr: 0.1}]\n", "which the space searches"),
    ("stages: [{trials: 2}, {trials: 2, space: {optim.momentum: {uniform: [0, 1]}}}]\n",
     "stages[1].space names optim.momentum"),
])
def test_bad_search_files_fail_before_any_trial(tmp_path, edit, message):
    text = textwrap.dedent(GOOD)
    key = edit.split(":")[0]
    lines = text.splitlines()
    # replace the section the edit names (space/stages) or add a new top-level key
    if key in ("space", "stages"):
        start = next(i for i, line in enumerate(lines) if line.startswith(key))
        end = next((j for j in range(start + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), len(lines))
        lines[start:end] = edit.rstrip("\n").splitlines()
    else:
        lines.append(edit.rstrip("\n"))
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        check_against_config(load_search(path))
    assert message in str(info.value)


def test_missing_search_file_names_the_bundled_ones(tmp_path):
    with pytest.raises(ConfigError, match="Bundled: .*twolayer-cifar10"):
        load_search(tmp_path / "nope.yaml")


def test_bundled_search_by_name():
    spec = load_search("twolayer-cifar10")
    assert spec.base == "twolayer-cifar10" and [s.trials for s in spec.stages] == [100, 100]
    fine = {p.key: (p.low, p.high) for p in spec.stage_params(1)}
    assert fine == {"optim.lr": (1e-4, 1e-3), "optim.l2": (1e-4, 1.0)}  # the seed's finer ranges
    assert spec.maximize


def test_direction_from_the_metric_name(tmp_path):
    text = textwrap.dedent(GOOD)
    assert load_search(_write(tmp_path, text)).maximize
    assert not load_search(_write(tmp_path, text + "metric: val_loss\n")).maximize
    assert not load_search(_write(tmp_path, text + "metric: val_acc\ndirection: minimize\n")).maximize


def test_search_files_validate_with_torch_blocked(tmp_path):
    """Validating a search (every range end built as a config) imports no torch."""
    path = _write(tmp_path, GOOD)
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class _NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, _NoTorch())
        from cnnlab.search.spec import check_against_config, load_search
        check_against_config(load_search({str(path)!r}))
        check_against_config(load_search("twolayer-cifar10"))
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
