"""Base class for config sections: unknown keys are errors, assignments are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. ``extra="forbid"`` turns a typo into an error instead of a no-op;
    ``allow_inf_nan=False`` refuses ``inf``/``nan`` (``optim.lr=1e400`` would be written to the
    run's YAML as null and rerun at the default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              allow_inf_nan=False)
