"""Subcommands of the ``cnnlab`` CLI, one module each (discovered by :mod:`cnnlab.cli`)."""
