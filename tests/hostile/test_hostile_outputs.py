"""Where `export` and `report` write, and what `predict` reads: an output path that is a folder,
in a read-only folder, under a file, or a file of the run itself; a run without checkpoints or
with a damaged one; images of every format Pillow reads (they work, and agree with the PNG) and
hostile ones (empty, truncated, not an image, a folder, transparency that conversion would
drop): exit 2 naming the file, nothing of the run changed (the ``cli`` fixture)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, features

from cnnlab.cli import main
from cnnlab.export import read_metadata
from tests.hostile.conftest import snapshot
from tests.hostile.test_hostile_faults import _read_only

FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}


def export(run, fmt, out):
    return ["export", run, "--format", fmt, "--out", out]


# -- export: the output path (checked before the conversion, in every format) ---------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_out_is_a_folder(run_copy, tmp_path, cli, fmt):
    cli(export(run_copy, fmt, tmp_path), 2, tmp_path, "is a folder")


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_out_in_a_read_only_folder(run_copy, tmp_path, monkeypatch, cli, fmt):
    folder = tmp_path / "ro"
    folder.mkdir()
    _read_only(monkeypatch, folder)
    cli(export(run_copy, fmt, folder / "sub" / f"m{FORMATS[fmt]}"), 2, folder, "not a writable folder")
    assert not (folder / "sub").exists()


def test_export_out_under_a_file(run_copy, tmp_path, cli):
    (tmp_path / "plain").write_text("a file")
    cli(export(run_copy, "safetensors", tmp_path / "plain" / "m.safetensors"), 2, tmp_path / "plain")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("target", ["checkpoints/best.pt", "metrics.csv", "config.yaml"])
def test_export_over_a_file_of_the_run_is_refused(run_copy, cli, fmt, target):
    """Was the checkpoint (or the config) replaced by the export."""
    cli(export(run_copy, fmt, run_copy / target), 2, run_copy / target, "file of the run")


def test_report_over_a_file_of_the_run_is_refused(run_copy, cli):
    cli(["report", run_copy, "--device", "cpu", "--out", run_copy / "metrics.csv"], 2, run_copy / "metrics.csv")


def test_export_into_missing_folders_and_over_an_existing_file(run_copy, tmp_path, capsys):
    """Missing folders are made; an existing file (not the run's) is replaced atomically: the new
    export whole, or the old file as it was when the export fails."""
    out = tmp_path / "new" / "deeper" / "m.safetensors"
    assert main([str(a) for a in export(run_copy, "safetensors", out)]) == 0
    assert read_metadata(out)["classes"]
    out.write_bytes(b"an older file")
    assert main([str(a) for a in export(run_copy, "safetensors", out)]) == 0
    assert read_metadata(out)["classes"]
    assert [p.name for p in out.parent.iterdir()] == ["m.safetensors"]  # no temporary file left
    kept = out.read_bytes()
    (run_copy / "checkpoints" / "best.pt").write_bytes(b"damaged")
    assert main([str(a) for a in export(run_copy, "safetensors", out)]) == 2
    assert out.read_bytes() == kept
    capsys.readouterr()


# -- export: the checkpoint ------------------------------------------------------------------------
def test_export_of_a_run_without_checkpoints(run_copy, tmp_path, cli):
    for path in (run_copy / "checkpoints").iterdir():
        path.unlink()
    cli(export(run_copy, "torchscript", tmp_path / "m.pt"), 2, run_copy / "checkpoints" / "best.pt", "no checkpoint")
    cli(["export", run_copy, "--format", "onnx"], 2, run_copy / "checkpoints" / "best.pt")
    assert not (run_copy / "export").exists()


@pytest.mark.parametrize("damage", [b"", b"\x80\x02garbage", "cut"])
def test_export_of_a_damaged_checkpoint(run_copy, tmp_path, cli, damage):
    path = run_copy / "checkpoints" / "best.pt"
    path.write_bytes(path.read_bytes()[:2000] if damage == "cut" else damage)
    cli(export(run_copy, "onnx", tmp_path / "m.onnx"), 2, path)
    assert not (tmp_path / "m.onnx").exists()


# -- predict: image formats ------------------------------------------------------------------------
def _digit() -> Image.Image:
    array = np.zeros((28, 28), np.uint8)
    array[6:22, 12:16] = 255
    return Image.fromarray(array, "L")


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _opaque(*bands):
    return [*bands, Image.new("L", (28, 28), 255)]


LOSSLESS = {  # name: the digit in another format or mode, the same pixels once decoded
    "gif": lambda d: _encoded(d, "GIF"),
    "bmp": lambda d: _encoded(d, "BMP"),
    "tiff": lambda d: _encoded(d, "TIFF"),
    "webp": lambda d: _encoded(d.convert("RGB"), "WEBP", lossless=True),
    "palette png": lambda d: _encoded(d.convert("RGB").convert("P"), "PNG"),
    "opaque rgba png": lambda d: _encoded(Image.merge("RGBA", _opaque(d, d, d)), "PNG"),
    "opaque la png": lambda d: _encoded(Image.merge("LA", _opaque(d)), "PNG"),
    "1-bit png": lambda d: _encoded(d.convert("1"), "PNG"),
}


def _predict(run, path, capsys) -> list:
    assert main(["predict", str(run), str(path), "--device", "cpu", "-k", "10", "--json"]) == 0
    return [(t["class"], round(t["probability"], 6)) for t in json.loads(capsys.readouterr().out)[0]["top"]]


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_predict_reads_other_formats_as_the_png(run_copy, tmp_path, capsys, fmt):
    if fmt == "webp" and not features.check("webp"):
        pytest.skip("this Pillow has no WebP")
    reference, other = tmp_path / "digit.png", tmp_path / "digit.other"
    reference.write_bytes(_encoded(_digit(), "PNG"))
    other.write_bytes(LOSSLESS[fmt](_digit()))
    assert _predict(run_copy, other, capsys) == _predict(run_copy, reference, capsys)


def _transparent(d):
    return _encoded(Image.merge("RGBA", [Image.new("L", (28, 28), 0)] * 3 + [d]), "PNG")


HOSTILE = {  # name: (the file's bytes from the digit, words of the message)
    "empty": (lambda d: b"", "empty"),
    "truncated png": (lambda d: _encoded(d, "PNG")[:60], "truncated"),
    "truncated jpeg": (lambda d: _encoded(d.convert("RGB"), "JPEG")[:200], "not a readable image"),
    "text": (lambda d: b"not an image at all", "not a readable image"),
    "shape in the alpha only": (_transparent, "transparent"),
    "palette with a transparent colour": (lambda d: _encoded(d.convert("RGB").convert("P"), "PNG", transparency=0),
                                          "transparent"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_predict_hostile_image(run_copy, tmp_path, cli, case):
    make, words = HOSTILE[case]
    path = tmp_path / "image.png"
    path.write_bytes(make(_digit()))
    err = cli(["predict", run_copy, path, "--device", "cpu"], 2, path, words)
    assert "BytesIO" not in err
    cli(["predict", run_copy, path, "--device", "cpu", "--sliding"], 2, path, words)


def test_predict_given_a_folder(run_copy, tmp_path, cli):
    cli(["predict", run_copy, tmp_path, "--device", "cpu"], 2, tmp_path, "is a folder")
    cli(["predict", run_copy, tmp_path, "--device", "cpu", "--sliding"], 2, tmp_path, "is a folder")


def test_export_leaves_the_run_as_it_was(run_copy, capsys):
    """The default output is the run's own export/ folder: written, nothing else changed."""
    before = snapshot(run_copy)
    assert main(["export", str(run_copy), "--format", "safetensors"]) == 0
    after = snapshot(run_copy)
    assert {k: v for k, v in after.items() if not k.startswith("export/")} == before
    assert "export/model.safetensors" in after
    capsys.readouterr()
