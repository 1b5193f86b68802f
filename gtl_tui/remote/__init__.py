"""Watching a run from elsewhere: ``stream`` (the relay ``gtl-tui stream`` runs on the server: events, control
and file fetches over stdin/stdout), ``client`` (``attach ssh://...``: the monitor's source and controller through
ssh), ``commands`` (the ``stream`` and ``serve`` commands). No torch: a laptop needs only the base install."""
