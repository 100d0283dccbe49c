"""Model registry: a model name maps to its parameter model and its builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from diffrec_core.config import ModelConfig, RunConfig, TimeWeightsConfig, _first_error
from diffrec_core.models.base import Recommender


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: type[BaseModel]
    build: Callable[..., Recommender]  # (params, n_users, n_items, **side) -> model
    description: str = ""
    # Side data the builder needs beyond the config (e.g. "item_clusters" for L-DiffRec): arrays
    # passed as keyword arguments by build_model. A model keeps each in a buffer of the same name,
    # so a checkpoint carries it and load_checkpoint rebuilds the model from its own files.
    side: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelSpec] = {}

# Variants by composition (paper §3.6): a name -> (base model, input transform). The T-variants
# are their base model trained, evaluated and served on per-user time-weighted input vectors
# (RunConfig.time_weights; TimeWeightsConfig() when the run sets none).
VARIANTS: dict[str, tuple[str, str]] = {
    "tdiffrec": ("diffrec", "time_weights"),
    "ltdiffrec": ("ldiffrec", "time_weights"),
}


def register(name: str, params: type[BaseModel], description: str = "", side: tuple[str, ...] = ()):
    """Decorator registering ``build(params, n_users, n_items, **side)`` under ``name``."""

    def wrap(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, params, build, description, tuple(side))
        return build

    return wrap


def _load_builtin() -> None:
    """Import every module of ``diffrec_core.models``; importing a module registers its models."""
    import importlib
    import pkgutil

    import diffrec_core.models as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"diffrec_core.models.{module.name}")


def available() -> list[str]:
    _load_builtin()
    return sorted([*_REGISTRY, *(name for name, (base, _) in VARIANTS.items() if base in _REGISTRY)])


def base_model(name: str) -> str:
    """The registered model a variant name builds (``tdiffrec`` -> ``diffrec``); other names unchanged."""
    return VARIANTS[name][0] if name in VARIANTS else name


def time_weights_for(run: RunConfig) -> TimeWeightsConfig | None:
    """The time weights a run's model input gets: the run's own, else the defaults for a T-variant, else None."""
    if run.time_weights is not None:
        return run.time_weights
    if run.model.name in VARIANTS and VARIANTS[run.model.name][1] == "time_weights":
        return TimeWeightsConfig()
    return None


def spec(name: str) -> ModelSpec:
    _load_builtin()
    if name in VARIANTS and name not in _REGISTRY:
        base, transform = VARIANTS[name]
        if base not in _REGISTRY:
            raise ValueError(f"model {name!r} is {base!r} with {transform.replace('_', ' ')}, but {base!r} is not registered; "
                             f"available: {', '.join(available())}")
        return _REGISTRY[base]
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def validate_params(config: ModelConfig, strict: bool = False) -> BaseModel:
    """The model's own parameters, validated (``strict``: no type conversion, for what a user wrote);
    ValueError with the first problem otherwise."""
    s = spec(config.name)
    try:
        return s.params.model_validate(config.params, strict=strict)
    except Exception as exc:  # pydantic.ValidationError
        raise ValueError(f"model {config.name!r}: invalid params: {_first_error(exc)}") from None


def build_model(config: ModelConfig, n_users: int, n_items: int, seed: int | None = None, side: dict | None = None) -> Recommender:
    """Build a model; with ``seed`` its initial weights are reproducible (global RNG state untouched).

    ``side``: the side data the model declares (``spec(name).side``), e.g. {"item_clusters": array};
    a missing entry is refused with its name, entries the model does not declare are ignored.
    """
    params = validate_params(config)
    s = spec(config.name)
    side = side or {}
    missing = [key for key in s.side if side.get(key) is None]
    if missing:
        raise ValueError(f"model {config.name!r} needs side data {', '.join(map(repr, missing))} (e.g. item clusters); none was given")
    extra = {key: side[key] for key in s.side}
    if seed is None:
        return s.build(params, n_users, n_items, **extra)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return s.build(params, n_users, n_items, **extra)


def resolve_config(dataset: str, model: str, path=None) -> RunConfig:
    """``config.resolve_run_config``, except that a variant with no shipped file of its own starts
    from its base model's (configs/<dataset>/<variant>, then <dataset>/<base>, default/<variant>,
    default/<base>), renamed to the variant."""
    from diffrec_core.config import default_config_path, resolve_run_config

    if path is not None or model not in VARIANTS:
        return resolve_run_config(dataset, model, path)
    base = VARIANTS[model][0]
    for folder in (dataset, "default"):
        for name in (model, base):
            found = default_config_path(folder, name)
            if found is not None and found.parent.name == folder:
                run = RunConfig.from_file(found)
                return run.model_copy(update={"model": run.model.model_copy(update={"name": model})})
    return RunConfig(model=ModelConfig(name=model))


def resolve_run(dataset: str, model: str, path=None) -> RunConfig:
    """``resolve_config`` with the model's own parameters validated (ValueError naming the first problem)."""
    run = resolve_config(dataset, model, path)
    validate_params(run.model)
    return run
