"""Few-shot evaluation of learngenes: ``evaluate`` builds descendants of a learngene and the baselines (scratch,
pretrained, random 20 %, generation 0) and fine-tunes them on episodes; ``baselines`` trains and stores the
pretrained network. ``gtl-tui evaluate`` and ``gtl-tui pretrain`` drive them."""
