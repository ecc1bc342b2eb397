"""The command line and config validation stay light: no torch until a command needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnlab.lazy import lazy_exports


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_does_not_import_torch():
    loaded = _modules_after("from cnnlab.cli import build_parser; build_parser().format_help()")
    assert "torch" not in loaded


def test_config_module_does_not_import_torch():
    loaded = _modules_after("import cnnlab.config")
    assert "torch" not in loaded


@pytest.mark.parametrize("package, name", [
    ("cnnlab.data", "load_data"), ("cnnlab.models", "build_model"),
    ("cnnlab.optim", "build_optimizer"), ("cnnlab.train", "start_run"),
])
def test_lazy_names_resolve_to_their_submodule_objects(package, name):
    import importlib

    module = importlib.import_module(package)
    assert name in dir(module)
    value = getattr(module, name)
    assert callable(value) and getattr(module, name) is value


def test_unknown_lazy_name_is_an_attribute_error():
    getattr_, _ = lazy_exports("cnnlab", {"thing": "nowhere"})
    with pytest.raises(AttributeError, match="has no attribute 'other'"):
        getattr_("other")


_BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""


def test_optim_schedule_train_monitor_validate_with_torch_blocked():
    """One config class per rule and schedule (issue 12): these sections validate, switch rules
    and report errors in a process where importing torch raises."""
    code = _BLOCK_TORCH + """
from pydantic import TypeAdapter, ValidationError
from cnnlab.config import ExperimentConfig, merge
from cnnlab.optim.config import OptimConfig, ScheduleConfig, OPTIM_BY_NAME, SCHEDULE_BY_NAME
from cnnlab.train.config import TrainConfig
from cnnlab.monitor.config import MonitorConfig
for name in OPTIM_BY_NAME:
    TypeAdapter(OptimConfig).validate_python({"name": name, "l2": 1e-4})
for name in SCHEDULE_BY_NAME:
    TypeAdapter(ScheduleConfig).validate_python({"name": name, "warmup_epochs": 1})
TrainConfig(epochs=3, early_stopping="patience"); MonitorConfig(tensorboard=True)
merged = merge({"optim": {"name": "sgd", "momentum": 0.5, "l2": 0.1}}, {"optim": "adam"})
assert merged["optim"] == {"name": "adam", "l2": 0.1}, merged
try:
    TypeAdapter(OptimConfig).validate_python({"name": "adam", "momentum": 0.5})
except ValidationError:
    pass
else:
    raise SystemExit("adam accepted momentum")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_every_recipe_and_the_data_and_model_keys_validate_with_torch_blocked():
    """Issue 12: the whole config validates without torch. Every recipe, and overrides of
    data.normalize / data.augment (stepconfig's classes), model.arch (zoo name and spec), model.init
    and data.jet_prep (the physics check), load; bad values still fail with their messages."""
    code = _BLOCK_TORCH + """
import sys
from cnnlab.config import list_recipes, load_config
from cnnlab.errors import ConfigError
recipes = list_recipes()
assert len(recipes) >= 4, recipes
for recipe in recipes:
    load_config(recipe)
good = [["data.normalize=[scale, {zca: {eps: 0.01}}]", "data.augment=[{crop: {padding: 4}}, flip]"],
        ["data.normalize=[{gcn: {scale: 55, lam: 10}}, {pca: {dims: 20}}]", "data.augment=[]"],
        ["model.arch=resnet9", "model.init=he"], ["model.arch=conv5-16p2 relu pool2 fc", "model.init=kaiming"],
        ["data.source=jets", "data.jet_prep=[centre, rotate, normalise]"]]
for overrides in good:
    load_config(None, overrides)
bad = {"data.augment=[{flip: {p: 2}}]": "data.augment: step 'flip': p must be in [0, 1], got 2",
       "data.augment=[{crop: {pad: 4}}]": "step 'crop' has no parameter 'pad'. Did you mean 'padding'",
       "data.normalize=standardise": "data.normalize: unknown preprocessing step 'standardise'. Did you mean",
       "data.normalize=[{pca: {dims: 0}}]": "step 'pca': dims must be >= 1",
       "model.arch=lenet6": "model.arch: unknown model 'lenet6'. Did you mean 'lenet5'",
       "model.arch=conv5-16p2 relu pool2 fc7x": "'fc7x' is not a layer",
       "model.init=hee": "model.init: unknown init scheme 'hee'. Did you mean 'he'",
       "data.jet_prep=[rotat]": "data.jet_prep: unknown jet-image preprocessing step 'rotat'"}
for override, message in bad.items():
    try:
        load_config(None, ["data.source=jets", override])
    except ConfigError as exc:
        assert message in str(exc), (override, str(exc))
    else:
        raise SystemExit(f"{override} accepted")
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
