"""The jets sources' part of the ``data:`` section: ``data.jet_prep`` is checked when the config
is read. The check registers into the data package's hook (:data:`cnnlab.data.config.SOURCE_KEY_CHECKS`),
so physics depends on data and not the reverse; :mod:`cnnlab.config` imports this module. No
torch here (and numpy only when ``jet_prep`` is set).
"""

from __future__ import annotations

from cnnlab.data.config import SOURCE_KEY_CHECKS


@SOURCE_KEY_CHECKS.register("jet_prep")
def check_jet_prep(names) -> None:
    """ValueError naming the step: unknown (with a did-you-mean), or ``normalise`` not last."""
    from cnnlab.physics.jetprep import parse_steps

    parse_steps(names)
