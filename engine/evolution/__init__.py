"""GTL evolution: lifetimes, selection, mutation, trainers and the generation loop."""
