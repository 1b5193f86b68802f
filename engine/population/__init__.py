"""Population training: all individuals of a generation trained together as one grouped network.

Importing this package registers :class:`PopulationTrainer` as the trainer ``"population"``.
"""

from __future__ import annotations

from engine.evolution.trainers import register_trainer
from engine.population.batches import PopulationData, population_data
from engine.population.network import GroupedLinear, PopulationNet
from engine.population.train import (
    PopulationStep,
    Precision,
    make_optimizer,
    population_correct,
    train_population,
)
from engine.population.trainer import PopulationTrainer

register_trainer("population", PopulationTrainer)

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
