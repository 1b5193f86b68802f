"""The GTL engine: evolves learngenes. Never imports the UI (textual, typer)."""

__version__ = "0.1.0"
