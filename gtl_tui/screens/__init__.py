"""The monitor's screens: ``run`` (one run's tabs, its log read in a thread worker, its keys and control
commands), ``runs`` (every run of a folder, and the compare screen), and the modal ``confirm`` (a yes/no question,
e.g. before stopping a run) and ``help`` (every key)."""
