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
