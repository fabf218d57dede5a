"""Reproduce the paper's claims on real data: `python -m tfdsmlp.experiments`.

See `plan.py` for the grid, `runner.py` for resumable execution and
`aggregate.py` for the tables and plots written into docs/RESULTS.md.
"""
