"""The sweep file (``SWEEP.toml``): a base config, fixed overrides, a grid, seeds; and its points.

```toml
name = "ways"                       # the sweep's folder: <runs-dir>/<name>/
base = "configs/quickstart.toml"    # relative to the sweep file
seeds = [0, 1, 2]                   # run.seed of each point
max_parallel = 2                    # runs at once (default: one per GPU; on the CPU, cores / run.threads)
[set]                               # overrides for every run, as --set
"evolution.generations" = 3
[grid]                              # the cartesian product of these
"task.ways" = [5, 10]
[evaluate]                          # optional: evaluate each finished run's learngene (the evaluate verb's options)
episodes = 40
shots = [1, 5]
```

``[[evaluate]]`` (an array of tables) evaluates each run once per table, each with its own ``protocol``
(``default`` writes ``evaluations/<learngene>.json``, ``plain`` ``evaluations/<learngene>.plain.json``).
``[variants]`` names settings that differ in several keys at once (levers, say) and crosses them with the grid::

    [variants]
    default = {}
    lineage = { "evolution.lineage_decay" = 0.5 }
    crossover = { "mutation.crossover" = 0.5, "evolution.population" = 10 }

A variant's keys override ``[set]``; a key may not be both in a variant and in the grid.

:func:`plan` resolves and validates every point's config before anything is created: a bad key or value
anywhere raises :class:`SweepError` with one line naming the point and the field. A point's config is built
exactly as ``gtl-tui run BASE --set ...`` builds it (same name, same hash), so a sweep's run equals that run
launched alone.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NAME_RE = r"[A-Za-z0-9._-]+"
SEED_KEY = "run.seed"


class SweepError(ValueError):
    """A sweep file, a point of it or a sweep folder is unusable (one-line message)."""


class EvaluateSpec(BaseModel):
    """Options of ``gtl-tui evaluate`` applied to each finished run's learngene."""

    model_config = ConfigDict(extra="forbid")

    episodes: int = Field(100, ge=1)
    shots: list[int] = Field(default_factory=lambda: [1, 5], min_length=1)
    steps: list[int] = Field(default_factory=lambda: [0, 10, 50], min_length=1)
    ways: int = Field(5, ge=2)
    queries: int = Field(15, ge=1)
    seed: int = 0
    methods: list[str] | None = None
    pretrained: str | None = None
    arch: str | None = None
    width_scale: float = Field(1.0, gt=0)
    extra_layers: int = Field(0, ge=0)
    protocol: Literal["default", "plain"] = "default"
    # None: the protocol's own value (default: lr 1e-3, body 0.1x, adam, prototype head, BatchNorm frozen)
    lr: float | None = Field(None, gt=0)
    body_lr_scale: float | None = Field(None, ge=0)
    optimizer: Literal["adam", "sgd"] | None = None
    head_init: Literal["prototype", "random"] | None = None
    bn: Literal["frozen", "train"] | None = None
    metric: Literal["euclidean", "cosine"] = "euclidean"
    threads: int = Field(0, ge=0)

    @field_validator("shots")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if min(v) < 1:
            raise ValueError(f"shots must be positive integers (got {v})")
        return v

    @field_validator("steps")
    @classmethod
    def _nonnegative(cls, v: list[int]) -> list[int]:
        if min(v) < 0:
            raise ValueError(f"steps must be integers >= 0 (got {v})")
        return v

    def cli_args(self) -> list[str]:
        """The arguments of ``gtl-tui evaluate`` that apply these options."""
        args: list[str] = []
        for name, value in self.model_dump(exclude_none=True).items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            args += [flag, str(value)]
        return args


class SweepFile(BaseModel):
    """The validated contents of a sweep file (``set`` and ``grid`` keys flattened to ``section.key``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=f"^{NAME_RE}$")
    base: str | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    max_parallel: int | None = Field(None, ge=1)
    fixed: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    evaluate: list[EvaluateSpec] = Field(default_factory=list)

    @field_validator("evaluate", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v  # [evaluate] or [[evaluate]]

    @field_validator("evaluate")
    @classmethod
    def _one_per_protocol(cls, v: list[EvaluateSpec]) -> list[EvaluateSpec]:
        protocols = [e.protocol for e in v]
        if len(set(protocols)) != len(protocols):
            raise ValueError("two evaluations with the same protocol (each writes evaluations/<learngene>"
                             "[.<protocol>].json): give each [[evaluate]] its own protocol")
        return v

    @field_validator("variants", mode="before")
    @classmethod
    def _flatten_variants(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        return {name: _flatten(ov, stop=lambda x: not isinstance(x, dict)) if isinstance(ov, dict) else ov
                for name, ov in v.items()}

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in v:
            if not re.fullmatch(NAME_RE, name):
                raise ValueError(f"{name!r}: a variant's name may hold letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("fixed", mode="before")
    @classmethod
    def _flatten_set(cls, v: Any) -> Any:
        return _flatten(v, stop=lambda x: not isinstance(x, dict)) if isinstance(v, dict) else v

    @field_validator("grid", mode="before")
    @classmethod
    def _flatten_grid(cls, v: Any) -> Any:
        return _flatten(v, stop=lambda x: not isinstance(x, dict)) if isinstance(v, dict) else v

    @field_validator("grid")
    @classmethod
    def _nonempty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"{key}: needs at least one value")
            if len({repr(x) for x in values}) != len(values):
                raise ValueError(f"{key}: a value is repeated")
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"a seed is repeated (got {v})")
        return v

    @model_validator(mode="after")
    def _no_seed_keys(self) -> SweepFile:
        for where, keys in (("set", self.fixed), ("grid", self.grid)):
            if SEED_KEY in keys:
                raise ValueError(f"{where}: {SEED_KEY} comes from seeds; list the seeds there")
        both = set(self.fixed) & set(self.grid)
        if both:
            raise ValueError(f"{sorted(both)[0]}: is both in set and in grid")
        for name, ov in self.variants.items():
            if SEED_KEY in ov:
                raise ValueError(f"variants.{name}: {SEED_KEY} comes from seeds; list the seeds there")
            clash = set(ov) & set(self.grid)
            if clash:
                raise ValueError(f"variants.{name}: {sorted(clash)[0]} is also in grid")
        return self


def _flatten(d: dict[str, Any], stop: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c.d": 2}`` -> ``{"a.b": 1, "c.d": 2}`` (TOML allows both spellings)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not stop(v):
            out.update(_flatten(v, stop, key + "."))
        else:
            out[key] = v
    return out


@dataclass
class Point:
    """One run of a sweep: its grid values (its setting) and seed, and the config resolved from them."""

    index: int
    name: str  # the run directory's name inside the sweep folder
    setting: dict[str, Any]  # the grid's values for this point
    seed: int
    config: dict[str, Any] = field(repr=False, default_factory=dict)  # resolved, as written to config.toml
    variant: str | None = None  # the variant's name, when the sweep file has [variants]
    variant_set: dict[str, Any] = field(default_factory=dict)  # that variant's overrides

    @property
    def overrides(self) -> dict[str, Any]:
        return {**self.variant_set, **self.setting, SEED_KEY: self.seed}

    def label(self) -> str:
        head = [f"variant={self.variant}"] if self.variant is not None else []
        return ", ".join(head + [f"{k}={_show(v)}" for k, v in {**self.setting, SEED_KEY: self.seed}.items()])


@dataclass
class Plan:
    """A validated sweep: its file, the base config it builds on, the fixed overrides and every point."""

    spec: SweepFile
    source: Path  # the sweep file
    base: Path
    fixed: dict[str, Any]  # [set], then the command line's --set
    points: list[Point]


def _show(v: Any) -> str:
    return {True: "true", False: "false"}.get(v, str(v)) if isinstance(v, bool) else str(v)


def _slug(v: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", _show(v)).strip("_") or "x"


def point_names(grid_keys: list[str], combos: list[tuple[Any, ...]], seeds: list[int],
                variants: list[str] | None = None) -> list[str]:
    """Readable run names, e.g. ``ways5-seed0`` or ``03-lineage-ways5-seed0``: the variant's name, the last part
    of each grid key (the whole key when two share it) then its value; a number in front keeps the points in
    order and makes any two names differ."""
    tails = [k.rsplit(".", 1)[-1] for k in grid_keys]
    labels = [t if tails.count(t) == 1 else k.replace(".", "_") for t, k in zip(tails, grid_keys, strict=True)]
    names = []
    heads: list[list[str]] = [[v] for v in variants] if variants else [[]]
    width = len(str(len(heads) * len(combos) * len(seeds) - 1))
    i = 0
    for head in heads:
        for combo in combos:
            for seed in seeds:
                parts = head + [f"{lab}{_slug(v)}" for lab, v in zip(labels, combo, strict=True)] + [f"seed{seed}"]
                names.append(f"{i:0{width}d}-" + "-".join(parts))
                i += 1
    return names


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    parts = [p.strip() for p in key.split(".") if p.strip()]
    if not parts:
        raise SweepError(f"{key!r}: empty key")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SweepError(f"{key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _pydantic_line(err: ValidationError) -> str:
    from engine.config import format_error  # the run config's own one-line format

    return format_error(err)


def read_sweep_file(path: Path) -> SweepFile:
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep file")
    from engine.config import read_toml

    try:
        data = read_toml(path)
    except ValueError as err:
        raise SweepError(str(err)) from None
    try:
        return SweepFile.model_validate(data)
    except ValidationError as err:
        line = _pydantic_line(err).replace("fixed", "set", 1)
        if isinstance(data.get("evaluate"), dict):  # one [evaluate] table: no index in its field names
            line = line.replace("evaluate.0.", "evaluate.", 1)
        raise SweepError(f"{path}: {line}") from None


def plan(path: str | Path, sets: list[str] | None = None, default_base: Path | None = None) -> Plan:
    """Read the sweep file at ``path``, apply the command line's ``--set`` items and resolve every point's config.

    Raises:
        SweepError: the file, an override or any point's config is invalid (one line naming the point and field).
    """
    from engine.config import ConfigError, config_from_dict, parse_override

    source = Path(path).expanduser()
    spec = read_sweep_file(source)
    base = (source.parent / spec.base) if spec.base is not None else default_base
    if base is None or not base.is_file():
        raise SweepError(f"{source}: base: config file {str(base)!r} does not exist")
    from engine.config import read_toml

    try:
        base_data = read_toml(base)
    except ValueError as err:
        raise SweepError(str(err)) from None
    base_data.setdefault("name", base.stem)  # as load_config names a run: the run launched alone is the same
    fixed = dict(spec.fixed)
    for item in sets or []:
        try:
            parts, value = parse_override(item)
        except ConfigError as err:
            raise SweepError(str(err)) from None
        key = ".".join(parts)
        if key == SEED_KEY or key in spec.grid:
            raise SweepError(f"--set {item!r}: {key} is set by the sweep's {'seeds' if key == SEED_KEY else 'grid'}")
        fixed[key] = value
    for e in spec.evaluate:
        if e.methods:
            from engine.fewshot.methods import METHODS

            bad = [m for m in e.methods if m not in METHODS]
            if bad:
                raise SweepError(f"{source}: evaluate.methods: unknown method {bad[0]!r}; choose from "
                                 f"{', '.join(METHODS)}")
        if e.pretrained is not None:
            e.pretrained = str((source.parent / e.pretrained).expanduser().absolute())
    keys = list(spec.grid)
    combos = list(itertools.product(*(spec.grid[k] for k in keys)))
    variants: list[str | None] = list(spec.variants) or [None]
    names = point_names(keys, combos, spec.seeds, list(spec.variants))
    points: list[Point] = []
    for variant, combo, seed in itertools.product(variants, combos, spec.seeds):
        point = Point(len(points), names[len(points)], dict(zip(keys, combo, strict=True)), seed, variant=variant,
                      variant_set=dict(spec.variants[variant]) if variant is not None else {})
        data = _deep_copy(base_data)
        try:
            for key, value in [*fixed.items(), *point.overrides.items()]:
                _set_path(data, key, value)
            point.config = config_from_dict(data).to_dict()
        except (ConfigError, SweepError) as err:
            msg = str(err).removeprefix("config error: ")
            raise SweepError(f"point {point.name} ({point.label()}): {msg}") from None
        points.append(point)
    return Plan(spec, source, base, fixed, points)


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}
