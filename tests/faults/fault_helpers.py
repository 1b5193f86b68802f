"""The tiny config the fault tests run (a uniquely named module: `conftest` is ambiguous across test folders)."""

TINY = [
    "evolution.population=4", "evolution.generations=3", "lifetime.steps=6", "lifetime.batch_size=16",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
    "run.threads=1",
]
