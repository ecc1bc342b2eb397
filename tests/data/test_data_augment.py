"""Batched augmentation: each op against a per-image reference, reproducible from the seed,
train split only, and the preview command."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.config import load_config
from cnnlab.data.augment import build_augment, expand_one_pixel_shifts, shift_batch
from cnnlab.errors import ConfigError


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(64, 3, 12, 10, generator=torch.Generator().manual_seed(0))


def run(spec, x, index=None, epoch=0, seed=0):
    torch.manual_seed(seed)
    return build_augment(spec)(x, index, epoch)


def windows(x, pad, mode):
    """All translates of each image by |dy|, |dx| <= pad, computed one by one."""
    padded = F.pad(x, (pad,) * 4, mode=mode)
    h, w = x.shape[2:]
    return {(dy, dx): padded[:, :, pad - dy:pad - dy + h, pad - dx:pad - dx + w]
            for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)}


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_crop_output_is_a_padded_window_of_each_image(batch, mode):
    out = run([{"crop": {"padding": 2, "mode": mode}}], batch)
    candidates = windows(batch, 2, mode)
    used = set()
    for i in range(len(batch)):
        match = [k for k, v in candidates.items() if torch.equal(v[i], out[i])]
        assert match, f"image {i} is no translate of its input"
        used.add(match[0])
    assert len(used) > 10  # offsets vary across the batch


def test_shift_batch_moves_by_the_given_offsets(batch):
    dy = torch.tensor([1, -2] * 32)
    dx = torch.tensor([0, 3] * 32)
    out = shift_batch(batch, dy, dx, 3)
    ref = windows(batch, 3, "constant")
    assert torch.equal(out[0], ref[(1, 0)][0]) and torch.equal(out[1], ref[(-2, 3)][1])


def test_same_seed_same_augmentation_other_seed_differs(batch):
    spec = [{"crop": {"padding": 2}}, "flip", "cutout", "rotate_scale", {"elastic": {"alpha": 3, "sigma": 2}}]
    a, b, c = run(spec, batch, seed=5), run(spec, batch, seed=5), run(spec, batch, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_probability_extremes_and_mix(batch):
    assert torch.equal(run([{"flip": {"p": 0}}], batch), batch)
    assert torch.equal(run([{"flip": {"p": 1}}], batch), batch.flip(3))
    out = run(["flip"], batch)
    flipped = [torch.equal(out[i], batch[i].flip(2)) for i in range(len(batch))]
    kept = [torch.equal(out[i], batch[i]) for i in range(len(batch))]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54


def test_alternating_flip_complements_between_epochs_and_ignores_the_rng(batch):
    index = torch.arange(100, 164)
    e0 = run(["alternating_flip"], batch, index, epoch=0, seed=1)
    e1 = run(["alternating_flip"], batch, index, epoch=1, seed=2)
    e2 = run(["alternating_flip"], batch, index, epoch=2, seed=3)
    assert torch.equal(e0, e2)
    for i in range(len(batch)):
        pair = {torch.equal(e0[i], batch[i]), torch.equal(e1[i], batch[i])}
        assert pair == {True, False}, "each image is seen once flipped, once not, over two epochs"
    flipped = sum(not torch.equal(e0[i], batch[i]) for i in range(len(batch)))
    assert 15 < flipped < 49


def test_cutout_zeroes_one_square(batch):
    ones = torch.ones(200, 1, 16, 16)
    out = run([{"cutout": {"size": 4}}], ones)
    holes = (out == 0).squeeze(1)
    sizes = holes.sum((1, 2))
    assert sizes.max() == 16 and sizes.min() >= 4  # a 4x4 square, clipped at the border
    for hole in holes[:20]:
        rows, cols = hole.any(1).nonzero().squeeze(1), hole.any(0).nonzero().squeeze(1)
        assert hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_one_pixel_shift_is_one_of_five(batch):
    out = run(["one_pixel_shift"], batch)
    ref = windows(batch, 1, "constant")
    moves = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    chosen = [next(m for m in moves if torch.equal(ref[m][i], out[i])) for i in range(len(batch))]
    assert len(set(chosen)) == 5


def test_expand_one_pixel_shifts_is_nielsens_five_copies():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.uint8).view(2, 1, 3, 3)
    images, labels = expand_one_pixel_shifts(x, torch.tensor([4, 7]))
    assert images.shape == (10, 1, 3, 3) and labels.tolist() == [4, 7] * 5
    assert torch.equal(images[:2], x)
    up = images[2, 0]  # dy=-1: row r holds original row r+1, last row zero
    assert torch.equal(up[:2], x[0, 0, 1:]) and up[2].sum() == 0
    right = images[8, 0]  # dx=+1
    assert torch.equal(right[:, 1:], x[0, 0, :, :2]) and right[:, 0].sum() == 0


def test_rotate_scale_identity_at_zero_and_rotates_by_90(batch):
    from cnnlab.data.augment import RandomRotateScale

    assert torch.allclose(run([{"rotate_scale": {"degrees": 0, "scale": 0}}], batch), batch, atol=1e-5)
    square = torch.rand(4, 1, 9, 9)
    out = RandomRotateScale.transform(square, torch.full((4,), torch.pi / 2), torch.ones(4))
    assert any(torch.allclose(out, torch.rot90(square, k, (2, 3)), atol=1e-4) for k in (1, 3))
    zoomed = RandomRotateScale.transform(square, torch.zeros(4), torch.full((4,), 2.0))
    assert torch.allclose(zoomed[:, :, 4, 4], square[:, :, 4, 4], atol=1e-5)  # centre fixed
    rotated = run([{"rotate_scale": {"degrees": 15, "scale": 0.1}}], batch)
    assert not torch.allclose(rotated, batch, atol=1e-3)


def test_elastic_zero_alpha_is_identity_and_distortion_is_smooth():
    x = torch.linspace(0, 1, 28).repeat(28, 1).expand(8, 1, 28, 28).contiguous()
    assert torch.allclose(run([{"elastic": {"alpha": 0}}], x), x, atol=1e-5)
    out = run([{"elastic": {"alpha": 8, "sigma": 4}}], x)
    assert not torch.allclose(out, x, atol=1e-3)
    # a horizontal ramp displaced smoothly stays nearly a ramp away from the borders
    grad = (out[:, :, 6:-6, 7:-6] - out[:, :, 6:-6, 6:-7]).abs()
    assert grad.max() < 0.2


def test_train_loader_augments_but_evaluation_does_not(tiny_mnist_dir):
    from cnnlab.data import build_train_loader, fit_preprocess, load_data
    from cnnlab.train.evaluation import evaluate_split

    cfg = load_config(None, ["data.source=idx", f"data.path={tiny_mnist_dir}", "data.val_size=500",
                             "data.augment=[{crop: {padding: 2, mode: constant}}, flip]"]).data
    splits = load_data(cfg)
    pre = fit_preprocess(cfg, splits)
    loader = build_train_loader(cfg, splits.train, 100, pre, 10)
    torch.manual_seed(0)
    x, y = next(iter(loader.iterate(torch.Generator().manual_seed(0))))
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))[:100]
    assert not torch.equal(x, pre(splits.train.images[order]))
    assert torch.equal(y, splits.train.labels[order])
    seen = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    evaluate_split(model, splits.test, pre, 250)
    assert torch.equal(torch.cat(seen), pre(splits.test.images))


@pytest.mark.parametrize("override,message", [
    ("data.augment=[crop, flipp]", "Did you mean 'flip'"),
    ("data.augment=[{crop: {pad: 4}}]", "step 'crop' has no parameter 'pad'. Did you mean 'padding'"),
    ("data.augment=[{flip: {p: 2}}]", "p must be in [0, 1]"),
    ("data.augment=[{crop: {mode: wrap}}]", "mode must be reflect, constant or replicate"),
])
def test_bad_augment_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert "data.augment" in str(err.value) and message in str(err.value)


def test_augment_preview_writes_a_grid(tiny_mnist_dir, tmp_path, capsys):
    from PIL import Image

    from cnnlab.cli import main

    config = tmp_path / "aug.yaml"
    config.write_text(f"data: {{source: idx, path: '{tiny_mnist_dir}', val_size: 0, "
                      "augment: [{crop: {padding: 3, mode: constant}}, elastic, cutout]}\n")
    out = tmp_path / "grid.png"
    assert main(["augment-preview", str(config), "--out", str(out), "--images", "4", "--copies", "3",
                 "--json"]) == 0
    with Image.open(out) as image:
        assert image.size[0] > 4 * 28 and image.size[1] > 4 * 28
    assert '"copies": 3' in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_fused_crop_then_flip_equals_the_two_ops(batch, mode):
    from cnnlab.data.augment import Augment, RandomCrop, RandomFlip

    ops = [RandomCrop(3, mode), RandomFlip(0.5)]
    torch.manual_seed(4)
    fused = Augment(ops)(batch)
    torch.manual_seed(4)
    index = torch.arange(len(batch))
    separate = ops[1](ops[0](batch, index, 0), index, 0)
    assert torch.equal(fused, separate)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_shift_batch_border_modes_match_f_pad(batch, mode):
    dy, dx = torch.randint(-3, 4, (64,)), torch.randint(-3, 4, (64,))
    out = shift_batch(batch, dy, dx, 3, mode)
    ref = windows(batch, 3, mode)
    for i in range(0, 64, 7):
        assert torch.equal(out[i], ref[(int(dy[i]), int(dx[i]))][i])


@pytest.mark.parametrize("spec,early", [
    ("[{crop: {padding: 4, mode: reflect}}, flip, alternating_flip]", True),
    ("[{crop: {padding: 4, mode: constant}}, flip]", False),
    ("[flip, cutout]", False),
])
def test_loader_augments_stored_uint8_only_when_that_commutes(tiny_mnist_dir, spec, early):
    """Pixel-moving ops on uint8 then standardize == standardize then the ops, bit for bit."""
    from cnnlab.data import DeviceLoader, build_augment, fit_preprocess, load_data

    cfg = load_config(None, ["data.source=idx", f"data.path={tiny_mnist_dir}", "data.val_size=0",
                             f"data.augment={spec}"]).data
    splits = load_data(cfg)
    data = splits.train.subset(slice(0, 300))
    pre = fit_preprocess(cfg, splits)
    augment = build_augment(cfg.augment)
    loader = DeviceLoader(data, 100, shuffle=True, preprocess=pre, augment=augment)
    assert (augment.moves_pixels_only and pre.pointwise_per_channel) is early
    torch.manual_seed(0)
    got = [x for x, _ in loader.iterate(torch.Generator().manual_seed(0), epoch=1)]
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    for k, x in enumerate(got):
        index = order[k * 100:(k + 1) * 100]
        assert torch.equal(x, augment(pre(data.images[index]), index, 1))


def test_augment_preview_bad_arguments_exit_2(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["augment-preview", "--out", str(tmp_path / "g.png"), "--images", "0"]) == 2
    assert "--images and --copies must be at least 1" in capsys.readouterr().err
    assert main(["augment-preview", "data.augment=[flipp]", "--out", str(tmp_path / "g.png")]) == 2
    assert "Did you mean 'flip'" in capsys.readouterr().err


def test_pixel_moving_augmentation_runs_before_patch_whitening():
    """patch_whiten stands for airbench94's first conv: images are flipped, then whitened
    (flipping the whitened maps would not be the same: the filters are not symmetric)."""
    from cnnlab.data.loader import DeviceLoader
    from cnnlab.data.preprocess import Pipeline, Standardize
    from cnnlab.data.whitening import PatchWhiten
    from cnnlab.data import ArrayDataset

    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 6, 6), dtype=torch.uint8)
    pipeline = Pipeline([Standardize(), PatchWhiten(size=2, fit_images=None)]).fit(images)
    assert pipeline.augment_first and not pipeline.pointwise_per_channel
    flip_all = build_augment([{"flip": {"p": 1.0}}])
    data = ArrayDataset(images, torch.zeros(16, dtype=torch.long))
    (x, _), = DeviceLoader(data, 16, preprocess=pipeline, augment=flip_all)
    assert torch.allclose(x, pipeline(images.flip(3)), atol=1e-5)
    assert not torch.allclose(x, pipeline(images).flip(3), atol=1e-3)
