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
    and report errors in a process where importing torch raises. (data.normalize/augment and
    model.arch still need torch: see the README's Configs section.)"""
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
