"""The "go beyond" sweep over the other commands: sizes and numbers given on the command line,
and search files, each a clear exit 2 naming the option or the file (no traceback, no run changed)."""

from __future__ import annotations

import numpy as np
import pytest


def test_predict_sliding_size_beyond_the_pixel_limit(tmp_path, run_copy, cli):
    """Was an OOM kill: a 10^10-pixel image was allocated."""
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(path)
    cli(["predict", run_copy, path, "--device", "cpu", "--sliding", "--size", "100000x100000"], 2, path, "pixels")
    cli(["predict", run_copy, path, "--device", "cpu", "--sliding", "--size", "0x-3"], 2, "--size")


def test_summary_input_beyond_the_pixel_limit(cli):
    """Was a traceback (torch's allocator) or an OOM kill."""
    cli(["summary", "lenet5", "--input", "1x100000x100000"], 2, "--input", "pixels")


@pytest.mark.parametrize("tol", ["nan", "inf"])
def test_gradcheck_tolerance_not_finite(cli, tol):
    """nan failed every check (exit 1); inf would pass every check."""
    cli(["gradcheck", "fc", "--tol", tol], 2, "--tol")


@pytest.mark.parametrize("content, words", [
    (b"\x00\x00", ["not valid YAML"]),
    (b"base: lenet5-mnist\nbase: lenet5-mnist\n", ["duplicate key"]),
    (b"a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     ["aliases"]),
])
def test_search_file_read_with_the_config_limits(tmp_path, cli, content, words):
    """Search files were read by yaml.safe_load, without the limits of configs."""
    path = tmp_path / "search.yaml"
    path.write_bytes(content)
    err = cli(["search", path, "--dir", tmp_path / "s"], 2, path, *words)
    assert len(err.strip().splitlines()) == 1
