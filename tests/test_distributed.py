"""Data-parallel training under torchrun (gloo on CPU): two ranks train what one process trains."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

TORCHRUN = Path(sys.executable).parent / "torchrun"
DIFFREC = Path(sys.executable).parent / "diffrec"
pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")

# Trains a deterministic model (MultiDAE without input dropout: no random draw after the seeded init)
# for 3 epochs and writes its weights and validation curve. Batches of 45 users split 23/22 over two
# ranks, so the row-weighted gradient average is what makes the two runs agree.
SCRIPT = '''
import json, sys
import numpy as np, scipy.sparse as sp, torch
from diffrec_core import distributed
from diffrec_core.config import RunConfig, with_training
from diffrec_core.evaluation import Target
from diffrec_core.models.registry import build_model
from diffrec_core.training import fit

distributed.init_from_env()
rng = np.random.default_rng(0)
def matrix(density):
    return sp.csr_matrix((rng.random((90, 40)) < density).astype(np.float32))
train, valid = matrix(0.2), matrix(0.05)
run = with_training(RunConfig.model_validate({"model": {"name": "multidae", "params": {"hidden_dims": [16], "dropout": 0.0}}}),
                    epochs=3, eval_every=1, batch_size=45, lr=0.01, patience=10, ema_decay=0.0, seed=3)
model = build_model(run.model, 90, 40, seed=3)
result = fit(model, train, Target(valid, train), run.training, device=torch.device("cpu"))
if distributed.is_primary():
    np.savez(sys.argv[1], **{k: v.numpy() for k, v in model.state_dict().items()})
    with open(sys.argv[1] + ".json", "w") as f:
        json.dump({"history": result.history, "best_epoch": result.best_epoch}, f)
distributed.finish()
'''


def _train(tmp_path, name, ranks):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.npz"
    command = [sys.executable, str(script), str(out)] if ranks == 1 else \
        [str(TORCHRUN), "--standalone", f"--nproc-per-node={ranks}", str(script), str(out)]
    # one thread per process either way (torchrun's default for its ranks), so that the gradient average
    # is the only difference: a matrix product split over another number of threads rounds differently
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    with np.load(out, allow_pickle=False) as weights:
        return {k: weights[k] for k in weights.files}, json.loads(Path(str(out) + ".json").read_text())


def test_two_ranks_train_the_weights_one_process_trains(tmp_path):
    one, one_log = _train(tmp_path, "one", 1)
    two, two_log = _train(tmp_path, "two", 2)
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert two_log["best_epoch"] == one_log["best_epoch"]
    for a, b in zip(one_log["history"], two_log["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["valid_recall@20"] == pytest.approx(b["valid_recall@20"], abs=1e-9)


def test_diffrec_train_under_torchrun_records_one_run(tmp_path):
    w = tmp_path / "w.duckdb"
    for args in (["ingest", "--users", "120", "--items", "60", "--interactions", "4000", "--seed", "3"], ["split"]):
        assert subprocess.run([str(DIFFREC), *args, "--warehouse", str(w)], capture_output=True, timeout=120).returncode == 0
    config = tmp_path / "fast.json"
    config.write_text(json.dumps({"model": {"name": "diffrec", "params": {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}, "training": {"epochs": 2, "eval_every": 1, "batch_size": 64}}))
    done = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node=2", str(DIFFREC), "train", "--config", str(config),
                           "--warehouse", str(w), "--artifacts", str(tmp_path / "art")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("run diffrec-") == 1, done.stdout  # rank 0 alone reports
    with duckdb.connect(str(w), read_only=True) as con:
        (run_id, status), = con.execute("select run_id, status from model_runs").fetchall()
    assert status == "trained" and (tmp_path / "art" / run_id / "model.pt").is_file()


# Each rank sets gradients by hand: a is used by both ranks, b only by rank 1, c by neither; the
# ranks' losses averaged over 3 and 1 terms. Every rank writes what average_gradients left.
AVERAGE = '''
import json, sys
import torch
from diffrec_core import distributed

distributed.init_from_env()
r = distributed.rank()
a, b, c = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
a.grad = torch.tensor([1.0, 2.0]) if r == 0 else torch.tensor([5.0, 10.0])
if r == 1:
    b.grad = torch.tensor([4.0, 8.0])
distributed.average_gradients([a, b, c], 3 if r == 0 else 1)
with open(f"{sys.argv[1]}.{r}.json", "w") as f:
    json.dump([None if p.grad is None else p.grad.tolist() for p in (a, b, c)], f)
'''


def test_gradients_are_averaged_by_the_terms_each_rank_averaged(tmp_path):
    script = tmp_path / "average.py"
    script.write_text(AVERAGE)
    done = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node=2", str(script), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = [[(3 * 1 + 5) / 4, (3 * 2 + 10) / 4], [1.0, 2.0], None]  # b: rank 1's 1/4 share of the terms
    for r in (0, 1):
        assert json.loads((tmp_path / f"out.{r}.json").read_text()) == expected


def test_bpr_models_average_over_their_triples():
    import torch

    from diffrec_core.config import ModelConfig
    from diffrec_core.models.base import Batch
    from diffrec_core.models.mf import MF
    from diffrec_core.models.registry import build_model

    x = torch.tensor([[1.0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    batch = Batch(users=torch.arange(3), x=x)
    rows, _, _ = MF.sample_triples(batch, torch.Generator().manual_seed(0))
    for name in ("mf", "lightgcn"):
        model = build_model(ModelConfig(name=name), 3, 4, seed=0)
        assert model.loss_terms(batch) == len(rows) == 4, name
    assert build_model(ModelConfig(name="multidae"), 3, 4, seed=0).loss_terms(batch) == 3
