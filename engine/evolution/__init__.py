"""GTL evolution: lifetimes, selection, mutation and the generation loop, which sees a trainer only through
:mod:`engine.trainers` (its protocol and make_trainer)."""
