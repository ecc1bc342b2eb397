"""Base class for config sections: unknown keys are errors, assignments are validated."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _numeric_not_bool(annotation: Any) -> bool:
    """True for ``int``, ``float``, ``int | None``...: number fields that do not accept a bool."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return bool not in args and any(a in (int, float) for a in args)
    return False


class Section(BaseModel):
    """A config section. ``extra="forbid"`` turns a typo into an error instead of a no-op;
    ``allow_inf_nan=False`` refuses ``inf``/``nan`` (``optim.lr=1e400`` would be written to the
    run's YAML as null and rerun at the default); a ``true``/``false`` where a number belongs is
    an error, not 1 or 0 (pydantic's lax mode would take ``train.epochs: true`` as 1 epoch).
    Strings of numbers stay accepted: YAML 1.1 reads ``1e-3`` (no dot) as a string."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        # a model validator, not a field one: pydantic allows no before-validator on union tags
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, bool) and _numeric_not_bool(field.annotation):
                    raise ValueError(f"{name} must be a number, not {str(value).lower()}")
        return data
