"""Model registry: a model name maps to its parameter model and its builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from diffrec_core.config import ModelConfig, _first_error
from diffrec_core.models.base import Recommender


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: type[BaseModel]
    build: Callable[[BaseModel, int, int], Recommender]  # (params, n_users, n_items) -> model
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


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
    return sorted(_REGISTRY)


def spec(name: str) -> ModelSpec:
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
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
