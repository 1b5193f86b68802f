"""gtl-tui's light side: the terminal monitor (``app``, ``screens``, ``widgets``, ``state``, ``sources``), the
command line (``cli``, ``commands``), run discovery (``runs``), the launcher of the background engine
(``background``) and remote watching (``remote``). No torch is imported here; the engine runs as its own process
(``run --headless`` runs it in this one, importing it only then)."""
