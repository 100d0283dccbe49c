"""The nightly retrain policy, sharded inference and the nightly flow on tiny built-in data."""

from diffrec_core.config import RunConfig, with_training
from diffrec_core.ingest.synthetic import SyntheticConfig

TINY = SyntheticConfig(n_users=150, n_items=80, n_interactions=6000, seed=5)
FAST_RUN = with_training(
    RunConfig.model_validate({"model": {"name": "diffrec", "params": {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}}),
    epochs=3, eval_every=1, batch_size=64,
)
