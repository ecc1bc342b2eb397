"""Without pythia8mc/fastjet the jets command says how to install them (exit code 2)."""

from __future__ import annotations

import sys

import pytest

from cnnlab.cli import main


@pytest.mark.parametrize("missing", ["pythia8mc", "fastjet"])
def test_missing_generator_says_how_to_install(missing, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    out = tmp_path / "jets.h5"
    assert main(["data", "jets", "--jets", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert missing in err and "pip install 'cnnlab[jets]'" in err
    assert not out.exists()  # nothing half-made


def test_sigterm_stops_generation_like_ctrl_c():
    """`kill PID` must reach the writer's cleanup (file closed at a block boundary)."""
    import os
    import signal

    from cnnlab.physics.produce import _terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with _terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
