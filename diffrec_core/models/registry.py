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
    build: Callable[[BaseModel, int, int], Recommender]  # (params, n_users, n_items) -> model
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}

# Variants by composition (paper §3.6): a name -> (base model, input transform). The T-variants
# are their base model trained, evaluated and served on per-user time-weighted input vectors
# (RunConfig.time_weights; TimeWeightsConfig() when the run sets none).
VARIANTS: dict[str, tuple[str, str]] = {
    "tdiffrec": ("diffrec", "time_weights"),
    "ltdiffrec": ("ldiffrec", "time_weights"),
}


def register(name: str, params: type[BaseModel], description: str = ""):
    """Decorator registering ``build(params, n_users, n_items)`` under ``name``."""

    def wrap(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, params, build, description)
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


def validate_params(config: ModelConfig) -> BaseModel:
    """The model's own parameters, validated; ValueError with the first problem otherwise."""
    s = spec(config.name)
    try:
        return s.params.model_validate(config.params)
    except Exception as exc:  # pydantic.ValidationError
        raise ValueError(f"model {config.name!r}: invalid params: {_first_error(exc)}") from None


def build_model(config: ModelConfig, n_users: int, n_items: int, seed: int | None = None) -> Recommender:
    """Build a model; with ``seed`` its initial weights are reproducible (global RNG state untouched)."""
    params = validate_params(config)
    if seed is None:
        return spec(config.name).build(params, n_users, n_items)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec(config.name).build(params, n_users, n_items)
