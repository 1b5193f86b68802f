"""Experiments: sweeps of runs (``gtl-tui sweep``), comparison across seeds (``compare``) and figures (``report``).

Nothing here imports torch at import time: a sweep process only launches and watches engine processes.
"""
