"""The seeds' results table, reproduced: rows (rows.py), running them (runner.py), and the
RESULTS.md table read back from the run directories (table.py)."""
