"""Typed, validated run configuration, loaded from TOML.

Every field has a default and a one-line description (the ``description`` of its ``Field``). A bad value raises
:class:`ConfigError` whose message is one line naming the field and the problem; the CLI prints it as is.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Meta-train class counts of the datasets whose split is fixed; used to check ``task.ways`` early.
META_TRAIN_CLASSES = {"cifar-fs": 64, "miniimagenet": 64}


class ConfigError(ValueError):
    """A configuration problem, with a one-line message naming the field."""


class _Section(BaseModel):
    # allow_inf_nan=False: lifetime.lr=inf (or nan) would train NaN genes; every number must be finite
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class RunConfig(_Section):
    seed: int = Field(0, description="Seed of every random choice in the run (tasks, init, tournaments, mutation).")
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.")
    backend: Literal["local", "ray"] = Field("local", description="Where individuals train: this process or Ray.")
    trainer: Literal["auto", "sequential", "population"] = Field(
        "auto", description="'sequential' trains one network at a time; 'population' a whole generation at once "
        "(grouped convolutions); 'auto' picks population on CUDA, sequential on the CPU.")
    address: str | None = Field(None, description="Ray cluster address (backend = 'ray'); none starts a local Ray.")
    ray_workers: int = Field(2, ge=1, le=4096, description="Ray workers when starting a local Ray (backend = 'ray').")
    ray_cpus_per_worker: float = Field(1.0, gt=0, description="CPU cores each Ray worker claims (its torch threads).")
    ray_gpus_per_worker: float = Field(
        1.0, ge=0, description="GPUs each Ray worker claims where the cluster has GPUs (0.5: two workers share "
        "one; 0: CPU only).")
    ray_max_retries: int = Field(3, ge=0, description="Re-runs of an individual whose Ray worker died before the "
                                 "run fails.")
    ray_engine_cpus: float = Field(
        1.0, ge=0, description="CPU cores the engine (the Ray driver) claims where a sweep places it on the cluster "
        "(backend = 'ray' with an address).")
    ray_engine_gpus: float = Field(
        0.0, ge=0, description="GPUs the engine claims where a sweep places it on the cluster (its lifetimes claim "
        "their own: ray_gpus_per_worker).")
    threads: int = Field(0, ge=0, description="CPU threads torch may use (0: torch's default, one per core).")
    compile: bool = Field(False, description="torch.compile the population trainer on CUDA.")
    max_population_chunk: int = Field(0, ge=0, description="Most networks trained together (0: as many as fit).")
    gene_history: int | None = Field(
        None, ge=0, description="Generations whose every learngene the run keeps in genes/ for export (none set: "
        "all; 0: none; N: the newest N); not part of the config's hash: it changes nothing a run computes.")

    @model_validator(mode="after")
    def _check_device(self) -> RunConfig:
        d = self.device
        if not (d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit())):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {d!r})")
        return self


class DataConfig(_Section):
    dataset: Literal["glyphs", "cifar-fs", "miniimagenet"] = Field(
        "glyphs", description="'glyphs' (built in, generated), 'cifar-fs' (CIFAR-100) or 'miniimagenet'.")
    root: str | None = Field(None, description="Folder or .npz of the dataset (not used by 'glyphs').")
    image_size: int = Field(32, ge=8, le=512, description="Side of the square images the networks see.")
    heldout_fraction: float = Field(0.2, gt=0, lt=1, description="Share of each class's images kept for fitness.")
    split_seed: int = Field(1234, description="Seed of the fixed per-class split into training and held-out images.")
    augment: bool = Field(True, description="Random crop and horizontal flip during training.")
    glyph_classes: int = Field(100, ge=10, description="Classes of the built-in glyph dataset (64/16/20 split ratio).")
    glyph_images_per_class: int = Field(120, ge=10, description="Images per class of the built-in glyph dataset.")
    glyph_seed: int = Field(1234, description="Seed that defines the built-in glyph dataset.")

    @field_validator("root")
    @classmethod
    def _absolute_root(cls, root: str | None) -> str | None:
        # a run's resolved config must still find its data when resumed from another working directory
        return None if root is None else str(Path(root).expanduser().absolute())

    @model_validator(mode="after")
    def _check_root(self) -> DataConfig:
        if self.dataset != "glyphs":
            if self.root is None:
                raise ValueError(f"root is required for dataset {self.dataset!r}")
            if not Path(self.root).expanduser().exists():
                raise ValueError(f"root {self.root!r} does not exist")
        return self


class ModelConfig(_Section):
    arch: str = Field("conv4", description="Network architecture (see `gtl-tui models`): conv4, vgg11, resnet12.")
    width: float = Field(1.0, gt=0, le=8, description="Width multiplier of every conv layer.")

    @model_validator(mode="after")
    def _check_arch(self) -> ModelConfig:
        from engine.models import available_models  # local: keeps config import light

        if self.arch not in available_models():
            raise ValueError(f"arch {self.arch!r} is unknown; choose one of {', '.join(available_models())}")
        return self


class TaskConfig(_Section):
    ways: int = Field(5, ge=2, description="Classes in each individual's task (k-way).")
    train_per_class: int = Field(0, ge=0, description="Training images per class in a lifetime (0: all).")
    heldout_per_class: int = Field(0, ge=0, description="Held-out images per class scored for fitness (0: all).")
    per_individual: int = Field(1, ge=1, description="Tasks each individual lives: K lifetimes from the same "
                                "inherited gene, fitness their mean; the first task's trained weights are inherited.")


class LifetimeConfig(_Section):
    steps: int = Field(100, ge=1, description="SGD steps of one lifetime (short on purpose).")
    batch_size: int = Field(64, ge=1, description="Images per training step.")
    lr: float = Field(0.05, gt=0, description="Learning rate of the lifetime optimiser.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(5e-4, ge=0, description="L2 weight decay.")
    gene_lr_scale: float = Field(1.0, ge=0, description="Learning-rate factor on inherited gene weights (0 freezes, "
                                 "above 1 the gene learns faster than the rest).")
    closed_gene: bool = Field(False, description="Keep the learngene a closed circuit through the lifetime: the "
                              "weights from non-gene channels into gene channels stay zero (from birth, generation 0 "
                              "too), so the inherited circuit is exactly the one that was trained and scored.")
    gene_loss_weight: float = Field(0.0, ge=0, description="Weight of a second loss in every lifetime step: the "
                                    "head reading the gene's channels alone (the other features zeroed), so the "
                                    "circuit learns to classify on its own, as a descendant's instinct needs.")


class FitnessConfig(_Section):
    kind: Literal["lifetime", "critic", "mixed"] = Field(
        "lifetime", description="'lifetime': held-out accuracy on its own task; 'critic': fresh networks that "
        "inherit the gene learn other classes; 'mixed': a weighted sum of both.")
    critics: int = Field(1, ge=1, description="Critic networks per individual (critic and mixed fitness).")
    critic_steps: int = Field(50, ge=1, description="Training steps of each critic network.")
    critic_weight: float = Field(0.5, ge=0, le=1, description="Weight of the critic score in mixed fitness.")
    critic_shots: int = Field(0, ge=0, description="Training images per class of each critic's task: k-shot critics, "
                              "scored on held-out queries, so fitness measures few-shot learning (0: "
                              "task.train_per_class).")


class EvolutionConfig(_Section):
    population: int = Field(16, description="Individuals per generation (>= 2).")
    generations: int = Field(10, ge=1, description="Generations to run.")
    tournament_size: int = Field(3, description="Individuals per tournament group (1 .. population).")
    elitism: bool = Field(True, description="The best learngene ever seen passes unmutated to one child.")
    lamarckian: bool = Field(True, description="Children inherit the weights their parent ended its lifetime with.")
    lineage_decay: float = Field(0.0, ge=0, lt=1, description="Select (tournaments, elite) on a lineage score: "
                                 "decay x the parents' score + (1 - decay) x its own fitness (0: own fitness only).")

    @model_validator(mode="after")
    def _check_sizes(self) -> EvolutionConfig:
        if self.population < 2:
            raise ValueError(f"population must be >= 2 (got {self.population})")
        if not 1 <= self.tournament_size <= self.population:
            raise ValueError(
                f"tournament_size must be between 1 and population ({self.population}) (got {self.tournament_size})")
        return self


class LearngeneConfig(_Section):
    fraction: float = Field(0.2, description="Target share of the conv parameters in the learngene, in (0, 1).")
    band: float = Field(0.25, ge=0, lt=1, description="Relative band around the per-layer channel ratio "
                        "sqrt(fraction) that mutations keep each layer inside.")
    nongene_init: Literal["random", "scaled", "zero"] = Field(
        "random", description="Init of non-gene weights at birth: 'random', 'scaled' (random x nongene_scale), 'zero'.")
    nongene_scale: float = Field(0.1, ge=0, description="Factor on random non-gene weights when nongene_init='scaled'.")

    @model_validator(mode="after")
    def _check_fraction(self) -> LearngeneConfig:
        if not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be in (0, 1) (got {self.fraction})")
        return self

    @property
    def ratio(self) -> float:
        """Per-layer channel ratio giving ``fraction`` of the conv parameters (fraction ~ ratio squared)."""
        return math.sqrt(self.fraction)

    @property
    def ratio_band(self) -> tuple[float, float]:
        r = self.ratio
        return max(r * (1 - self.band), 1e-6), min(r * (1 + self.band), 1.0)


class MutationConfig(_Section):
    rate: float = Field(0.3, ge=0, le=1, description="Probability that a layer's channel set mutates.")
    max_channels: int = Field(2, ge=1, description="Most channels one operation swaps, adds or drops.")
    swap: float = Field(1.0, ge=0, description="Relative weight of the swap operation.")
    add: float = Field(1.0, ge=0, description="Relative weight of the add operation.")
    drop: float = Field(1.0, ge=0, description="Relative weight of the drop operation.")
    crossover: float = Field(0.0, ge=0, le=1, description="Probability that a child has two tournament winners as "
                             "parents: per layer the channel set and its weights of either one (then mutated).")


class NotifyConfig(_Section):
    command: str = Field(..., min_length=1, description="Program run once per chosen event, the event's JSON on its "
                         "standard input (split like a shell line; no shell runs it), e.g. 'notify-send gtl-tui'.")
    events: list[str] = Field(["run_finished", "warning"], description="Event kinds that run the command.")
    timeout_s: float = Field(10.0, gt=0, le=600, description="Seconds a command may take before it is killed.")

    @field_validator("events")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        from engine.events import EVENT_TYPES

        unknown = [k for k in kinds if k not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event kind {unknown[0]!r} (one of: {', '.join(sorted(EVENT_TYPES))})")
        return kinds


class Config(_Section):
    """The whole run configuration; sections mirror the TOML tables."""

    name: str = Field("run", description="Name of the experiment (default run directory prefix).")
    run: RunConfig = Field(default_factory=RunConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    lifetime: LifetimeConfig = Field(default_factory=LifetimeConfig)
    fitness: FitnessConfig = Field(default_factory=FitnessConfig)
    evolution: EvolutionConfig = Field(default_factory=EvolutionConfig)
    learngene: LearngeneConfig = Field(default_factory=LearngeneConfig)
    mutation: MutationConfig = Field(default_factory=MutationConfig)
    notify: NotifyConfig | None = Field(None, description="A command told of chosen events (none by default); "
                                        "not part of the config's hash: it changes nothing a run computes.")

    @model_validator(mode="after")
    def _check_ways(self) -> Config:
        n = META_TRAIN_CLASSES.get(self.data.dataset)
        if self.data.dataset == "glyphs":
            n = glyph_split_sizes(self.data.glyph_classes)[0]
        if n is not None and self.task.ways > n:
            raise ValueError(f"task.ways ({self.task.ways}) exceeds the {n} meta-train classes of {self.data.dataset}")
        if self.fitness.kind != "lifetime" and n is not None and n < 2 * self.task.ways:
            raise ValueError(f"critic fitness needs at least 2 x task.ways meta-train classes (have {n})")
        return self

    @model_validator(mode="after")
    def _check_memory(self) -> Config:
        from engine.bounds import check_memory  # local: keeps config import light

        check_memory(self)  # sizes the machine cannot hold are refused before anything is built
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        return dump_toml(self.to_dict())

    def hash(self) -> str:
        """Short, stable hash of the resolved configuration (``notify`` and ``run.gene_history`` aside: they
        compute nothing). Fields added later (:data:`LATER_FIELDS`) count only away from their default, so the
        runs made before they existed keep their hash, and resume."""
        data = {k: v for k, v in self.to_dict().items() if k != "notify"}
        data["run"] = {k: v for k, v in data["run"].items() if k != "gene_history"}
        for (section, key), default in LATER_FIELDS.items():
            if data.get(section, {}).get(key) == default:
                del data[section][key]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_generations(self, generations: int) -> Config:
        return self.model_copy(update={"evolution": self.evolution.model_copy(update={"generations": generations})})

    def compute_hash(self) -> str:
        """The hash of everything that decides what each generation computes: all but the run's length
        (``evolution.generations`` only bounds the loop, so a run may be continued for more generations)."""
        return self.with_generations(0).hash()


#: Fields added after runs existed, with the default that computes what those runs computed (left out of the hash).
LATER_FIELDS: dict[tuple[str, str], Any] = {
    ("task", "per_individual"): 1,
    ("fitness", "critic_shots"): 0,
    ("evolution", "lineage_decay"): 0.0,
    ("mutation", "crossover"): 0.0,
    ("lifetime", "closed_gene"): False,
    ("lifetime", "gene_loss_weight"): 0.0,
    ("run", "ray_engine_cpus"): 1.0,
    ("run", "ray_engine_gpus"): 0.0,
}


def glyph_split_sizes(n_classes: int) -> tuple[int, int, int]:
    """Meta-train/val/test class counts of the glyph dataset: the 64/16/20 ratio of CIFAR-FS."""
    n_val = max(1, round(n_classes * 0.16))
    n_test = max(1, round(n_classes * 0.20))
    return n_classes - n_val - n_test, n_val, n_test


# ---------------------------------------------------------------------------------------------------------------
# Loading


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value``; the value is read as a TOML value when it parses, else as a string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    path = [p.strip() for p in key.strip().split(".") if p.strip()]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def _closest_field(loc: tuple[Any, ...]) -> str | None:
    """The known section or key nearest to a misspelt one (``evolution.populaton`` -> ``evolution.population``)."""
    import difflib

    model: Any = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if annotation is None:
            return None
        model = next((a for a in (annotation, *getattr(annotation, "__args__", ())) if isinstance(a, type)
                      and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*map(str, loc[:-1]), match[0]]) if match else None


def format_error(err: ValidationError) -> str:
    """The first problem of a validation error as one line naming the field (the sweep file uses it too)."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        kind = "section" if len(first["loc"]) == 1 else "key"
        guess = _closest_field(first["loc"])
        return f"{loc}: unknown {kind}" + (f" (did you mean {guess}?)" if guess else "")
    msg = msg.removeprefix("Value error, ")
    got = first.get("input")
    if first["type"] not in ("value_error",) and not isinstance(got, dict) and loc:
        msg = f"{msg} (got {got!r})"
    return f"{loc}: {msg}" if loc else msg


def config_from_dict(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"config error: {format_error(err)}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's table; ValueError (one line naming the file) when it is broken or not text."""
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: broken TOML: {err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a TOML config (or the defaults when ``path`` is None) and apply ``section.key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config error: file {str(p)!r} does not exist")
        try:
            data = read_toml(p)
        except ValueError as err:
            raise ConfigError(f"config error: {err}") from None
        data.setdefault("name", p.stem)
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data)


def dump_toml(data: dict[str, Any]) -> str:
    """Write a two-level dict (scalars at the top, then tables of scalars) as TOML."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for k, v in data.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        for k, v in table.items():
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
