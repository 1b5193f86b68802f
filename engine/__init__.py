"""The GTL engine: evolves learngenes and evaluates them. Loose modules hold what every part shares (``config``,
``events``, ``rundir``, ``atomic``, ``seeding``); the packages hold one role each: ``data``, ``models``,
``learngene``, ``evolution``, ``trainers``, ``run``, ``control``, ``fewshot``, ``benchmarks``. It never imports the
UI (gtl_tui, textual, typer); ``events``, ``rundir``, ``atomic`` and ``control`` import no torch, for the monitor."""

__version__ = "0.1.0"
