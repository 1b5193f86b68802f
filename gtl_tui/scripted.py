"""A scripted GTL run as an event log: what the monitor's tests, snapshots and benchmark replay.

The events follow the engine's schema and order (birth, training, evaluation, tournaments, mutation) with
plausible numbers, deterministic for a seed. Nothing here trains anything.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from engine.events import (
    EVENTS_FILE,
    CheckpointSaved,
    Event,
    GenerationCompleted,
    GenerationStarted,
    IndividualBorn,
    IndividualEvaluated,
    IndividualStarted,
    LearngeneExported,
    RunFinished,
    RunStarted,
    Tournament,
)
from engine.rundir import CHECKPOINTS_DIR, checkpoint_name

CLASS_NAMES = (
    "apple", "aquarium_fish", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee",
    "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant",
    "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
    "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse",
    "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum",
)
T0 = 1_700_000_000.0


def _gene_fraction(sizes: list[int], widths: list[int]) -> float:
    """Share of conv parameters between gene channels of consecutive layers (3 input channels first)."""
    prev_g, prev_w = 3, 3
    num = den = 0
    for s, w in zip(sizes, widths, strict=True):
        num += s * prev_g
        den += w * prev_w
        prev_g, prev_w = s, w
    return round(num / den, 4)


def scripted_run(*, population: int = 6, generations: int = 4, layer_widths: tuple[int, ...] = (32, 32, 64, 64),
                 ways: int = 5, seed: int = 0, name: str = "scripted", live_evaluated: int | None = None,
                 max_events: int | None = None, t0: float = T0, train_seconds: float = 2.0) -> list[Event]:
    """The events of a scripted run.

    Args:
        live_evaluated: when set, the log stops in the last generation after this many evaluations (a run
            still going); otherwise the run completes with a final export and ``run_finished``.
        max_events: cut the log after this many events (also a run still going).
    """
    rng = np.random.default_rng(seed)
    widths = list(layer_widths)
    events: list[Event] = []
    clock = [t0]

    def emit(ev: Event, dt: float = 0.0) -> bool:
        clock[0] += dt
        events.append(dataclasses.replace(ev, seq=len(events), t=round(clock[0], 3)))
        return max_events is not None and len(events) >= max_events

    config = {"run": {"seed": seed, "device": "cpu"}, "model": {"arch": "conv4", "width": 1.0},
              "evolution": {"population": population, "generations": generations, "tournament": 3}}
    if emit(RunStarted(name=name, config=config, config_hash="5c0ffee1", device="cpu", trainer="sequential",
                       backend="local", arch="conv4", population=population, generations=generations,
                       version="0.1.0", pid=0)):
        return events
    next_id = 0
    genes: dict[int, list[list[int]]] = {}
    fitness: dict[int, float] = {}
    winners: list[int] = []
    elite: tuple[int, float] = (-1, -1.0)
    for g in range(generations):
        last = g == generations - 1
        if emit(GenerationStarted(generation=g), 0.05):
            return events
        ids = []
        for k in range(population):
            parent = winners[k % len(winners)] if winners else None
            muts: list[dict] = []
            if parent is None:
                chans = [sorted(rng.choice(w, size=max(1, int(w * 0.45)), replace=False).tolist()) for w in widths]
            else:
                chans = [list(c) for c in genes[parent]]
                for layer, w in enumerate(widths):
                    if rng.random() > 0.35:
                        continue
                    cur = set(chans[layer])
                    outside = sorted(set(range(w)) - cur)
                    op = ["swap", "add", "drop"][int(rng.integers(3))]
                    n = int(rng.integers(1, 3))
                    added = sorted(rng.choice(outside, size=min(n, len(outside)), replace=False).tolist()) \
                        if op in ("swap", "add") and outside else []
                    removed = sorted(rng.choice(sorted(cur), size=min(n, len(cur) - 1), replace=False).tolist()) \
                        if op in ("swap", "drop") and len(cur) > 1 else []
                    if not added and not removed:
                        continue
                    chans[layer] = sorted((cur | set(added)) - set(removed))
                    muts.append({"layer": layer, "op": op, "added": added, "removed": removed})
            task = sorted(rng.choice(len(CLASS_NAMES), size=ways, replace=False).tolist())
            sizes = [len(c) for c in chans]
            i, next_id = next_id, next_id + 1
            genes[i] = chans
            ids.append(i)
            if emit(IndividualBorn(id=i, generation=g, parent=parent, task=task,
                                   task_names=[CLASS_NAMES[c] for c in task], mutations=muts, gene_sizes=sizes,
                                   layer_widths=widths, channels=chans, fraction=_gene_fraction(sizes, widths))):
                return events
        gen_t = clock[0]
        n_eval = population if not (last and live_evaluated is not None) else min(live_evaluated, population)
        for i in ids[:n_eval]:
            secs = round(train_seconds * (0.8 + 0.4 * rng.random()), 3)
            f = float(np.clip(0.32 + 0.06 * g + rng.normal(0, 0.05), 0.05, 0.99))
            fitness[i] = round(f, 4)
            if emit(IndividualStarted(id=i, generation=g), 0.01):
                return events
            if emit(IndividualEvaluated(id=i, generation=g, fitness=fitness[i], seconds=secs,
                                        lifetime_fitness=round(f * 1.1, 4), train_loss=round(2.0 - f, 4),
                                        images=int(ways * 96 * 3),
                                        loss_curve=[round(2.0 - f + 1.6 * 0.75 ** k, 4) for k in range(16)]), secs):
                return events
        if n_eval < population:  # a live run: the next one is training
            emit(IndividualStarted(id=ids[n_eval], generation=g), 0.01)
            return events
        order = rng.permutation(ids).tolist()
        winners = []
        for s in range(0, len(order), 3):
            group = order[s:s + 3]
            fits = [fitness[i] for i in group]
            w = group[int(np.argmax(fits))]
            winners.append(w)
            if emit(Tournament(generation=g, group=group, fitness=fits, winner=w), 0.001):
                return events
        fits = [fitness[i] for i in ids]
        best_id = ids[int(np.argmax(fits))]
        if fitness[best_id] > elite[1]:
            elite = (best_id, fitness[best_id])
        seconds = round(clock[0] - gen_t, 3)
        stats = GenerationCompleted(
            generation=g, best=max(fits), mean=round(float(np.mean(fits)), 4), worst=min(fits),
            std=round(float(np.std(fits)), 4), diversity=round(0.6 - 0.03 * g, 4), best_id=best_id,
            elite_id=elite[0], elite_fitness=elite[1], seconds=seconds,
            images_per_s=round(population * ways * 96 * 3 / max(seconds, 1e-3), 1))
        if emit(stats, 0.01) or emit(CheckpointSaved(generation=g, path=f"{CHECKPOINTS_DIR}/{checkpoint_name(g)}"), 0.2):
            return events
    path = f"learngenes/{name}-ind{elite[0]}.safetensors"
    emit(LearngeneExported(path=path, individual=elite[0], fitness=elite[1],
                           fraction=_gene_fraction([len(c) for c in genes[elite[0]]], widths)), 0.1)
    emit(RunFinished(status="completed", best_id=elite[0], best_fitness=elite[1], generations_done=generations), 0.05)
    return events


def write_events(run_dir: str | Path, events: list[Event]) -> Path:
    """Append events as log lines (with their own ``seq`` and ``t``) to ``<run_dir>/events.jsonl``."""
    path = Path(run_dir) / EVENTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(ev.to_json() + "\n" for ev in events)
    return path
