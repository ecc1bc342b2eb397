"""YAML read with limits: the configs, overrides and run files cnnlab reads are small, so a file
that is not is refused before it costs anything.

- **size**: at most :data:`MAX_BYTES` of text;
- **alias expansion**: ``&anchor`` / ``*alias`` share one node, so 560 bytes can describe a
  tree of 10^9 values (the "billion laughs"); the tree is counted as if expanded, through a
  memo of each node's expanded size, and more than :data:`MAX_NODES` values is refused;
- **duplicate keys** in one mapping are an error (PyYAML keeps the last one silently);
- only the safe tags (plain data: no Python objects), and text that decodes as UTF-8.

Every failure is a :class:`~cnnlab.errors.ConfigError` (or the ``error`` type passed) naming the
file. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from cnnlab.errors import ConfigError

#: the largest YAML text read (a config with every key is about 3 KB)
MAX_BYTES = 1 << 20
#: the most values a document may hold once its aliases are expanded
MAX_NODES = 100_000


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys in a mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)  # resolve ``<<: *base`` merges first (they may repeat keys)
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if duplicate:
                    mark = key_node.start_mark
                    raise _DuplicateKey(f"duplicate key {key!r} (line {mark.line + 1}); "
                                        "each key may appear once in a mapping")
        return super().construct_mapping(node, deep)


def _expanded_size(node: Node, memo: dict[int, int], limit: int) -> int:
    """How many nodes ``node`` stands for with every alias expanded (stops counting past ``limit``)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = limit + 1  # a node reached again while being counted: a recursive alias
    size = 1
    if isinstance(node, SequenceNode):
        children = node.value
    elif isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        size += _expanded_size(child, memo, limit)
        if size > limit:
            break
    memo[id(node)] = size
    return size


_RAISE = object()


def parse_yaml(text: str, origin: str, error: type[Exception] = ConfigError, invalid=_RAISE):
    """The data of one YAML document, read with the limits of this module. Text that is not
    YAML at all gives ``invalid`` if given (an override's value is then a plain string)."""
    if len(text) > MAX_BYTES:
        raise error(f"{origin}: {len(text)} characters of YAML; a config is at most {MAX_BYTES} "
                    "(is this the right file?)")
    loader = None
    try:
        loader = _StrictLoader(text)  # refuses non-printable characters already
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, MAX_NODES) > MAX_NODES:
            raise error(f"{origin}: its aliases (*name) expand to more than {MAX_NODES} values; "
                        "refusing to read it (a YAML 'billion laughs'?)")
        return loader.construct_document(node)
    except _DuplicateKey as exc:
        raise error(f"{origin}: {exc}") from None
    except yaml.YAMLError as exc:
        if invalid is not _RAISE:
            return invalid
        raise error(f"{origin}: not valid YAML: {_short(exc)}") from None
    except RecursionError:
        raise error(f"{origin}: nested too deeply to be a config") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: str | Path, error: type[Exception] = ConfigError):
    """Read and parse a YAML file: clear errors for unreadable, huge or non-UTF-8 files."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise error(f"{path}: larger than {MAX_BYTES} bytes; a config is a few KB (is this the right file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return parse_yaml(text, str(path), error)


def _short(exc: yaml.YAMLError) -> str:
    """PyYAML's message on one line, without the quoted source lines it appends (they can be huge)."""
    text = " ".join(str(exc).replace('in "<unicode string>", ', "at ").split())
    return text if len(text) <= 500 else text[:500] + " ..."
