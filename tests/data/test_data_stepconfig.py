"""The torch-free parameter classes of the preprocessing steps and augmentation ops: the same
names as the step registries, the same parameters and defaults as the steps' ``__init__``, and
the messages a bad value gets."""

from __future__ import annotations

import inspect

import pytest

import cnnlab.data.whitening  # noqa: F401  (registers pca, zca, patch_whiten)
from cnnlab.data.augment import AUGMENTATIONS, build_augment
from cnnlab.data.normalize import build_preprocess
from cnnlab.data.preprocess import PREPROCESSORS
from cnnlab.data.stepconfig import AUGMENTATION_OPS, PREPROCESSING_STEPS, validate_steps

STEPS = [(PREPROCESSORS, PREPROCESSING_STEPS, name) for name in PREPROCESSING_STEPS] + \
        [(AUGMENTATIONS, AUGMENTATION_OPS, name) for name in AUGMENTATION_OPS]


def test_the_tables_name_exactly_the_registered_steps():
    assert sorted(PREPROCESSING_STEPS) == PREPROCESSORS.names()
    assert sorted(AUGMENTATION_OPS) == AUGMENTATIONS.names()


@pytest.mark.parametrize("registry, table, name", STEPS, ids=[s[2] for s in STEPS])
def test_each_config_class_has_its_steps_parameters_and_defaults(registry, table, name):
    params = inspect.signature(registry.get(name)).parameters.values()
    # a step without an __init__ of its own has nn.Module's (*args, **kwargs): no parameters
    init = {p.name: p.default for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    fields = {k: f.default for k, f in table[name].model_fields.items()}
    assert init == fields  # same names, same order, same defaults


@pytest.mark.parametrize("registry, table, name", STEPS, ids=[s[2] for s in STEPS])
def test_every_step_builds_from_its_validated_defaults(registry, table, name):
    key = "data.normalize" if table is PREPROCESSING_STEPS else "data.augment"
    build = build_preprocess if table is PREPROCESSING_STEPS else build_augment
    assert validate_steps([name], key) == [{"name": name}]
    assert build([name])


def test_specs_keep_the_given_parameters_converted():
    specs = validate_steps([{"flip": {"p": 1}}, {"name": "crop", "padding": 3}], "data.augment")
    assert specs == [{"name": "flip", "p": 1.0}, {"name": "crop", "padding": 3}]
    assert isinstance(specs[0]["p"], float)
    assert validate_steps("standardize", "data.normalize") == [{"name": "standardize"}]


@pytest.mark.parametrize("value, key, message", [
    ([{"flip": {"p": 2}}], "data.augment", "data.augment: step 'flip': p must be in [0, 1], got 2"),
    ([{"flip": {"p": "often"}}], "data.augment", "p must be a number in [0, 1], got 'often'"),
    ([{"crop": {"padding": 4.5}}], "data.augment", "padding must be an integer >= 0, got 4.5"),
    ([{"rotate_scale": {"scale": 1}}], "data.augment", "scale must be in [0, 1), got 1"),
    ([{"elastic": {"sigma": 0, "p": -1}}], "data.augment", "sigma must be > 0, got 0; p must be in [0, 1], got -1"),
    ([{"pca": {"fit_images": 1}}], "data.normalize", "fit_images must be >= 2 or null, got 1"),
    ([{"gcn": {"divide": "maybe"}}], "data.normalize", "divide must be true or false, got 'maybe'"),
    ([{"zca": {"eps": float("inf")}}], "data.normalize", "eps must be a number >= 0, got inf"),
    (["scale", {"scale": {"by": 2}}], "data.normalize", "step 'scale' has no parameter 'by'. Parameters: (none)"),
    (["rotate"], "data.augment", "unknown augmentation 'rotate'. Did you mean 'rotate_scale'?"),
])
def test_bad_values_name_the_key_the_step_and_what_is_accepted(value, key, message):
    with pytest.raises(ValueError) as err:
        validate_steps(value, key)
    assert str(err.value).startswith(key) and message in str(err.value)


def test_the_builders_check_too():
    with pytest.raises(ValueError, match=r"data.augment: step 'cutout': size must be >= 1"):
        build_augment([{"cutout": {"size": 0}}])
    with pytest.raises(ValueError, match=r"data.normalize: step 'std': per must be channel or pixel"):
        build_preprocess([{"std": {"per": "image"}}])
