"""The ``gtl-tui`` command line, one module per group of commands: ``run`` (run, models), ``monitor`` (attach,
replay), ``control`` (ls, status, pause, resume, stop, export), ``evaluate`` (evaluate, pretrain), and
:mod:`gtl_tui.remote.commands` (stream, serve); ``common`` holds ``fail()``, the exit codes and the default config.
Each module imports only ``common`` of this package; :mod:`gtl_tui.cli` assembles them into the app. No torch at
import time (``--help``, ``ls``, ``status``, ``attach`` stay light): the commands that need it import it as they run.
"""
