"""Running an evolution in a run directory: ``runner`` creates, runs and resumes one in this process, ``daemon``
is the background engine process (``python -m engine.run.daemon RUN_DIR``), ``checkpoint`` writes and reads the
per-generation checkpoints, ``signals`` carries pause, resume and stop to the training thread's safe points. The
run directory's names, lock and states are in :mod:`engine.rundir`."""
