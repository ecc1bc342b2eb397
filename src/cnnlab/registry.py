"""Named registries: how architectures, optimizers, schedules, datasets and augmentations
become selectable from a config file without if/elif ladders (after timm's ``_registry``).

>>> MODELS = Registry("model")
>>> @MODELS.register("lenet5")
... def lenet5(**kw): ...
>>> MODELS.get("lenet5")  # doctest: +ELLIPSIS
<function lenet5 at ...>
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from cnnlab.errors import ConfigError

T = TypeVar("T")


def closest(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The candidate most similar to ``name`` (for "did you mean ...?" hints), or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates) -> str:
    guess = closest(name, list(candidates))
    return f" Did you mean '{guess}'?" if guess else ""


class Registry(Generic[T]):
    """A mapping from names to factories, with helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items:
                    raise ValueError(f"{self.kind} '{key}' is registered twice")
                self._items[key] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self.names())} "
                f"Known: {', '.join(self.names())}"
            ) from None

    def validate(self, name: str) -> str:
        """For pydantic field validators: ``name`` if registered, else ValueError with the same
        "did you mean" message (pydantic then prefixes the key and the config file)."""
        try:
            self.get(name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return name

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
