"""Hostile configs and run files: YAML read with limits, clear errors naming the file or key."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import small_overrides


def _train(config, runs_dir, small_idx, *extra) -> list:
    return ["train", config, "--quiet", *small_overrides(small_idx, runs_dir), *extra]


def test_non_utf8_config_file(tmp_path, runs_dir, small_idx, cli):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    cli(_train(path, runs_dir, small_idx), 2, path, "UTF-8")


def test_non_utf8_run_config_on_resume_and_evaluate(run_copy, cli):
    (run_copy / "config.yaml").write_bytes(b"\xff\xfe garbage \x80")
    # the run itself is the hostile file here: the check is that nothing else changes
    cli(["train", "--resume", run_copy, "--quiet"], 2, run_copy / "config.yaml", "UTF-8")
    cli(["evaluate", run_copy, "--device", "cpu"], 2, run_copy / "config.yaml")


def test_yaml_alias_bomb_is_refused_small(tmp_path, runs_dir, small_idx, cli):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("name: *a8")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1000
    err = cli(_train(path, runs_dir, small_idx), 2, path, "aliases")
    assert len(err) < 2000


def test_yaml_alias_bomb_in_an_override(runs_dir, small_idx, cli):
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = "[" + ", ".join(levels) + "]"  # 9^9 values once expanded
    err = cli(["train", "--quiet", *small_overrides(small_idx, runs_dir), f"optim.lr={bomb}"], 2,
              "override 'optim.lr=", "aliases")
    assert len(err) < 2000


def test_duplicate_keys_are_an_error(tmp_path, runs_dir, small_idx, cli):
    path = tmp_path / "dup.yaml"
    path.write_text("optim:\n  lr: 0.1\n  lr: 0.5\n")
    cli(_train(path, runs_dir, small_idx), 2, path, "duplicate key 'lr'")


def test_huge_config_file_is_refused(tmp_path, runs_dir, small_idx, cli):
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (2 << 20) + "\n")
    cli(_train(path, runs_dir, small_idx), 2, path, "larger than")


def test_deeply_nested_yaml_is_a_config_error(tmp_path, runs_dir, small_idx, cli):
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    cli(_train(path, runs_dir, small_idx), 2, path)


@pytest.mark.parametrize("value", ["inf", "1e400", ".nan"])
def test_infinite_learning_rate_is_refused(value, runs_dir, small_idx, cli):
    cli(["train", "--quiet", *small_overrides(small_idx, runs_dir), f"optim.lr={value}"], 2, "optim.lr")


@pytest.mark.parametrize("override, key", [("train.epochs=true", "epochs must be a number, not true"),
                                           ("optim.lr=false", "lr must be a number, not false"),
                                           ("train.batch_size=yes", "batch_size must be a number")])
def test_a_boolean_where_a_number_belongs_is_refused(override, key, runs_dir, small_idx, cli):
    """pydantic's lax mode would read `true` as 1 (one epoch) and `false` as a zero rate."""
    cli(["train", "--quiet", *small_overrides(small_idx, runs_dir), override], 2, key)


def test_run_name_with_a_path_is_refused(runs_dir, small_idx, cli):
    cli(["train", "--quiet", *small_overrides(small_idx, runs_dir), "name=../escape"], 2, "name")
    assert not (runs_dir.parent / "escape").exists()


def test_python_tag_in_config_is_refused(tmp_path, runs_dir, small_idx, cli):
    path = tmp_path / "tag.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    cli(_train(path, runs_dir, small_idx), 2, path)


@pytest.mark.parametrize("content", ["", "# only a comment\n\n   \n", "---\n"])
def test_empty_config_file_is_refused(tmp_path, runs_dir, small_idx, cli, content):
    """Was exit 0: an empty file trained the default recipe, hiding the mistake."""
    path = tmp_path / "empty.yaml"
    path.write_text(content)
    cli(_train(path, runs_dir, small_idx), 2, path, "empty", "name or base")


def test_empty_base_file_is_refused(tmp_path, runs_dir, small_idx, cli):
    (tmp_path / "empty.yaml").write_text("")
    path = tmp_path / "child.yaml"
    path.write_text("base: empty.yaml\nname: child\n")
    cli(_train(path, runs_dir, small_idx), 2, tmp_path / "empty.yaml", "empty")
