"""The monitor's modal screens: ``confirm`` (a yes/no question, e.g. before stopping a run) and ``help`` (every
key)."""
