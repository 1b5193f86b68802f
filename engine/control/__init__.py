"""A running engine's control channel, a Unix socket in its run directory: ``server`` (in the engine: status,
pause, resume, stop, export, with strict request validation) and ``client`` (the CLI, the monitor and the ssh
stream relay). No torch: the client side is imported by the light monitor."""
