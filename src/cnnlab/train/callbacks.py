"""The callback contract, the callbacks built from the config, and the hook dispatcher.

A callback subclasses :class:`Callback` and overrides any of its no-op hooks. Its state lives in
checkpoints under its ``name``, so adding or removing a callback on resume never hands one
callback another's state. A method named ``on_...`` that is not a hook is an error when the
class is defined (a misspelled hook would otherwise never run).

``CALLBACKS`` maps a name to ``factory(cfg) -> Callback | None``; every factory is asked in turn
and returns None when its part of the config is off. Packages register their own factories in
their ``callbacks`` modules; :func:`build_callbacks` imports those (this module imports none).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from cnnlab.registry import Registry

HOOKS = ("on_train_start", "on_step_end", "on_interval", "on_epoch_end", "on_train_end")

#: modules whose import registers callback factories (one way: they import this module)
CALLBACK_MODULES = ("cnnlab.monitor.callbacks", "cnnlab.train.early_stopping", "cnnlab.train.lookahead")


def _misspelled_hooks(obj: Any) -> list[str]:
    names = dir(obj) if not isinstance(obj, type) else [n for c in obj.__mro__ for n in vars(c)]
    return sorted({n for n in names if n.startswith("on_") and n not in HOOKS})


class Callback:
    """Hooks the trainer calls, all no-ops here:

    - ``on_train_start(trainer)``: once, before the first epoch (also after a resume);
    - ``on_step_end(trainer)``: after every optimizer step (``trainer.step`` counts it); only
      callbacks that override it are called, so the others cost nothing per step;
    - ``on_interval(trainer)``: every ``train.log_every`` steps, after the optimizer step, while
      ``p.grad`` still holds the last batch's gradients (cheap monitoring, off the hot path);
    - ``on_epoch_end(trainer, row) -> bool``: may add columns to ``row``; True stops training;
    - ``on_train_end(trainer, result)``: once, after the test evaluation (close files here);
    - ``state_dict()`` / ``load_state_dict(state)``: stored in checkpoints under ``name``.
    """

    #: the key of this callback's state in checkpoints; unique within a run
    name: str = ""
    #: under DDP, run on every rank (a decision all ranks must share), not on rank 0 alone
    all_ranks: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrong = _misspelled_hooks(cls)
        if wrong:
            raise TypeError(f"{cls.__name__}: {', '.join(wrong)} is not a callback hook "
                            f"(hooks: {', '.join(HOOKS)})")
        if not cls.name:
            cls.name = cls.__name__

    def on_train_start(self, trainer) -> None:
        pass

    def on_step_end(self, trainer) -> None:
        pass

    def on_interval(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, row: dict) -> bool:
        return False

    def on_train_end(self, trainer, result) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


CALLBACKS: Registry[Callable[[Any], Callback | None]] = Registry("callback")


def check_callbacks(callbacks: list) -> list[Callback]:
    """The callbacks, after checking the contract: a :class:`Callback`, and unique names."""
    seen: dict[str, Any] = {}
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"{cb!r}: a callback must subclass cnnlab.train.callbacks.Callback "
                            f"(hooks: {', '.join(HOOKS)})")
        if cb.name in seen:
            raise TypeError(f"two callbacks are named '{cb.name}' ({seen[cb.name]!r}, {cb!r}); "
                            "give one another name (its checkpoint state is stored by name)")
        seen[cb.name] = cb
    return list(callbacks)


def build_callbacks(cfg) -> list[Callback]:
    for module in CALLBACK_MODULES:
        importlib.import_module(module)
    built = []
    for name in CALLBACKS.names():
        cb = CALLBACKS.get(name)(cfg)
        if cb is not None:
            cb.name = name
            built.append(cb)
    return built


def overriding(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks whose class overrides ``hook`` (the per-step hook skips the rest)."""
    return [cb for cb in callbacks if getattr(type(cb), hook) is not getattr(Callback, hook)]


def call_hook(callbacks: list[Callback], hook: str, *args) -> list:
    return [getattr(cb, hook)(*args) for cb in callbacks]


def callback_states(callbacks: list[Callback]) -> dict[str, dict]:
    return {cb.name: cb.state_dict() for cb in callbacks}


def load_callback_states(callbacks: list[Callback], states) -> None:
    """Give each callback its own saved state, by name. A callback new to the run starts fresh;
    a saved state with no callback of that name is dropped (it was removed on resume).
    Checkpoints before cnnlab 0.1.1 kept a list by position: matched by position when the
    callbacks are the same in number, else ignored."""
    if isinstance(states, list):
        states = ({cb.name: s for cb, s in zip(callbacks, states)} if len(states) == len(callbacks) else {})
    for cb in callbacks:
        if cb.name in (states or {}):
            cb.load_state_dict(states[cb.name])
