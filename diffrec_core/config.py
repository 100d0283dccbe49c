"""Validated configuration, one frozen pydantic model per concern.

Flow parameters and checkpoints carry these models (as JSON), so a trained model
rebuilds from its own files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator


FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
"""Every configuration model: immutable, unknown keys refused, and no NaN or infinite float. What a user writes
(config files, grids) is validated strictly on top (``strict=True``): ``epochs: true`` or ``lr: "0.001"`` is refused
instead of read as 1 or 0.001, while configs stored by earlier versions (which could hold such values) still load."""

Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A random seed: every random step takes one (numpy, torch and FAISS all accept this range)."""


class _Frozen(BaseModel):
    model_config = FROZEN


class DiffusionConfig(_Frozen):
    """Gaussian diffusion over interaction vectors (paper §3.1–3.4)."""

    steps: PositiveInt = Field(40, description="T, number of diffusion steps")
    noise_scale: PositiveFloat = Field(0.005, description="s in Eq. (4)")
    noise_min: PositiveFloat = Field(0.005, description="alpha_min in Eq. (4)")
    noise_max: PositiveFloat = Field(0.01, description="alpha_max in Eq. (4)")
    mean_type: Literal["x0", "eps"] = Field("x0", description="what the denoiser predicts (paper §3.4)")
    sampling_steps: int = Field(0, ge=0, description="T' noising steps before denoising at inference (Algorithm 2)")
    sampling_noise: bool = Field(False, description="add posterior noise while denoising at inference")
    reweight: bool = Field(True, description="weight the loss per step by SNR(t-1) - SNR(t) (Eq. 11-12)")
    importance_sampling: bool = Field(True, description="sample steps by importance, Eq. (14)")
    history_per_step: PositiveInt = Field(10, description="losses kept per step for importance sampling")

    @model_validator(mode="after")
    def _check(self) -> "DiffusionConfig":
        if self.noise_min >= self.noise_max:
            raise ValueError(f"noise_min must be < noise_max, got {self.noise_min} >= {self.noise_max}")
        if self.sampling_steps > self.steps:
            raise ValueError(f"sampling_steps must be <= steps, got {self.sampling_steps} > {self.steps}")
        if self.noise_scale * self.noise_max >= 1.0:
            raise ValueError(f"noise_scale * noise_max must be < 1, got {self.noise_scale * self.noise_max}")
        return self


class DenoiserConfig(_Frozen):
    """MLP denoiser with a sinusoidal step embedding concatenated to its input."""

    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [1000], description="encoder hidden sizes; the decoder mirrors them")
    emb_size: PositiveInt = Field(10, description="step embedding size")
    activation: Literal["tanh", "relu", "gelu", "sigmoid"] = "tanh"
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="input dropout while training")
    norm: bool = Field(False, description="L2-normalise the input vector")


class ModelConfig(_Frozen):
    """A registered model name and its own parameters (validated by the registry)."""

    name: str = "diffrec"
    params: dict[str, Any] = Field(default_factory=dict)


class TrainingConfig(_Frozen):
    """The model-agnostic training loop."""

    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    batch_size: PositiveInt = 400
    epochs: PositiveInt = 200
    patience: PositiveInt = Field(20, description="epochs without a better validation Recall@20 before stopping")
    eval_every: PositiveInt = Field(1, description="evaluate on validation every N epochs")
    lr_schedule: Literal["constant", "plateau", "cosine"] = "constant"
    lr_decay: float = Field(0.5, gt=0.0, lt=1.0, description="factor for the plateau schedule")
    lr_patience: PositiveInt = Field(5, description="evaluations without improvement before the plateau schedule decays")
    min_lr: NonNegativeFloat = 1e-5
    seed: Seed = 2023
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: PositiveInt = 2048
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default")
    eval_precision: Literal["float32", "bfloat16"] = Field("float32", description="scoring precision during evaluation; bfloat16 autocast uses AMX/tensor cores where present")
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0, description="exponential moving average of the weights, evaluated and checkpointed instead of the raw weights; 0 = off")


class InferenceConfig(_Frozen):
    """Production batch inference."""

    k: PositiveInt = Field(20, description="recommendations per user")
    batch_size: PositiveInt = 2048


class TimeWeightsConfig(_Frozen):
    """T-variants (paper §3.6): each user's train interactions, in time order, weighted
    w_m = w_min + (m - 1) / (M - 1) * (w_max - w_min); the weighted vector replaces x0."""

    w_min: float = Field(0.1, ge=0.0, le=1.0, description="weight of a user's oldest interaction")
    w_max: float = Field(1.0, gt=0.0, le=1.0, description="weight of a user's newest interaction (and of a lone one)")

    @model_validator(mode="after")
    def _check(self) -> "TimeWeightsConfig":
        if self.w_min > self.w_max:
            raise ValueError(f"w_min must be <= w_max, got {self.w_min} > {self.w_max}")
        return self


class RunConfig(_Frozen):
    """Everything one training run needs: model and loop."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    time_weights: TimeWeightsConfig | None = Field(
        None, description="per-user time weights on the model input (T-variants); None = binary input"
    )

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        """Read a YAML or JSON run configuration; raise ValueError naming the file on bad content."""
        path = Path(path)
        data = read_yaml(path, "config")
        if not isinstance(data, dict):
            raise ValueError(f"{path}: config must be a mapping with 'model' and 'training'")
        try:
            run = cls.model_validate(data, strict=True)
        except Exception as exc:  # pydantic.ValidationError
            raise ValueError(f"{path}: invalid config: {_first_error(exc)}") from None
        from diffrec_core.models.registry import validate_params

        try:
            validate_params(run.model, strict=True)
        except ValueError as exc:
            if not str(exc).startswith("unknown model"):  # an unknown name is told by the command that uses it
                raise ValueError(f"{path}: {exc}") from None
        return run


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (the last would win unseen), and reads
    ``1e-3`` as a float (YAML 1.2; PyYAML's YAML 1.1 needs ``1.0e-3`` and would hand the strict configs a string)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise DuplicateKeyError(f"key {key!r} is given twice (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class DuplicateKeyError(yaml.YAMLError):
    pass


def load_yaml(text: str) -> Any:
    """The YAML (or JSON) document ``text``, read as configs are: duplicate keys refused, ``1e-3`` a float."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)


def read_yaml(path: Path, what: str) -> Any:
    """The YAML (or JSON) document in ``path``; ValueError naming the file, for any reason it cannot be read."""
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read {what}: {str(exc).strip().splitlines()[0]}") from None


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        err = errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        value = err.get("input")
        got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60 else ""
        msg = str(err.get("msg")).removeprefix("Value error, ")
        return f"{loc}: {msg}{got}" if loc else f"{msg}{got}"
    return str(exc).splitlines()[0]


def default_config_path(dataset: str, model: str) -> Path | None:
    """The repository's best known config for (dataset, model), else the model's default file, else None."""
    from importlib.resources import files

    for folder in (dataset, "default"):
        candidate = files("diffrec_core.configs") / folder / f"{model}.yaml"
        if candidate.is_file():
            return Path(str(candidate))
    return None


def config_folders() -> list[str]:
    """The folders of shipped run configs (one per dataset, and ``default``; ``grids`` holds search grids)."""
    from importlib.resources import files

    return sorted(entry.name for entry in files("diffrec_core.configs").iterdir()
                  if entry.is_dir() and entry.name not in ("grids", "__pycache__"))


def resolve_run_config(dataset: str, model: str, path: str | Path | None = None) -> RunConfig:
    """The config in ``path``, else the shipped one for (dataset, model), else the model's defaults."""
    if path is not None:
        return RunConfig.from_file(path)
    shipped = default_config_path(dataset, model)
    return RunConfig.from_file(shipped) if shipped else RunConfig(model=ModelConfig(name=model))


def with_training(run: RunConfig, **overrides: Any) -> RunConfig:
    """A copy of ``run`` with validated training overrides (``None`` values are ignored)."""
    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return run
    data = run.model_dump(mode="json")
    data["training"].update(updates)
    return RunConfig.model_validate(data)
