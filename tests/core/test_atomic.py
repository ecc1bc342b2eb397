"""cnnlab.atomic: the one write pattern behind checkpoints, CSV logs, downloads and caches."""

from __future__ import annotations

import pytest

from cnnlab.atomic import atomic_write


def test_clean_exit_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "state.bin"
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["state.bin"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(target, "w") as f:
            f.write("half of the new")
            assert target.read_text() == "old\n"  # nothing visible while writing
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_text_mode_keeps_line_ends_as_written(tmp_path):
    target = tmp_path / "t.csv"
    with atomic_write(target, "w") as f:
        f.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"


def test_other_modes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "x", "a"):
            pass
