"""Population training: all individuals of a generation trained together as one grouped network (the GPU
trainer, ``run.trainer = 'population'``). :func:`engine.trainers.make_trainer` imports it when it is chosen."""

from __future__ import annotations

from engine.trainers.population.batches import PopulationData, population_data
from engine.trainers.population.network import GroupedLinear, PopulationNet
from engine.trainers.population.train import (
    PopulationStep,
    Precision,
    make_optimizer,
    population_correct,
    train_population,
)
from engine.trainers.population.trainer import PopulationTrainer

__all__ = [
    "GroupedLinear",
    "PopulationData",
    "PopulationNet",
    "PopulationStep",
    "PopulationTrainer",
    "Precision",
    "make_optimizer",
    "population_correct",
    "population_data",
    "train_population",
]
