"""The few-shot evaluation's methods by name (torch-free: the sweep file and the CLI check names without torch)."""

METHODS = ("learngene", "scratch", "pretrained", "pretrained_random20", "pretrained_top20", "gen0")
