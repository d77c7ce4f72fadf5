"""torchrun with 2 CPU processes (gloo): the shared training machinery keeps the ranks' weights identical.

The test launches this same file under ``python -m torch.distributed.run --nproc_per_node 2 --standalone``;
each rank starts from DIFFERENT random weights on purpose (seeded by rank), trains a tiny network with
`scarenhance.training.fit` on its own shard of a tiny data set, and writes its final weights, the sample
indices it saw and its loss history. Identical weights at the end therefore prove that DDP broadcast rank
0's start and averaged every gradient; disjoint shards prove the DistributedSampler did its job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

N_SAMPLES = 24


class IndexedData(torch.utils.data.Dataset):
    """y = x·w + 0.5 with a fixed w; each item also carries its index so ranks can report their shard."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(N_SAMPLES, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.5

    def __len__(self):
        return N_SAMPLES

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i], "index": i}


def worker(out: Path) -> None:
    """One rank's training run (called under torchrun)."""
    from scarenhance.training import FitConfig, cleanup, fit, init_distributed, make_loader, wrap_model
    from scarenhance.training.checkpoint import state_dict_cpu

    ctx = init_distributed("cpu")
    assert ctx.world_size == 2 and dist_backend() == "gloo"
    torch.manual_seed(100 + ctx.rank)  # different start on each rank: DDP must make them equal
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    initial = state_dict_cpu(net)
    model = wrap_model(net, ctx)
    data = IndexedData()
    loader = make_loader(data, ctx, batch_size=4, shuffle=True, seed=3)
    seen: list[int] = []

    def train_step(model, batch):
        seen.extend(int(i) for i in batch["index"])
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def validate(model):
        with torch.no_grad():
            return -float(torch.nn.functional.mse_loss(model(data.x), data.y))

    config = FitConfig(epochs=3, checkpoint_dir=out / "checkpoints", metric_name="neg_mse", progress_bar=False)
    result = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), loader, train_step, validate,
                 config=config, ctx=ctx, log=lambda line: None)
    torch.save({"initial": initial, "final": state_dict_cpu(model)}, out / f"rank{ctx.rank}.pt")
    (out / f"rank{ctx.rank}.json").write_text(json.dumps({"seen": seen, "history": result.history, "best_epoch": result.best_epoch}))
    cleanup(ctx)


def dist_backend() -> str:
    return torch.distributed.get_backend()


@pytest.fixture(scope="module")
def torchrun_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           __file__, str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


def test_both_ranks_end_with_identical_weights(torchrun_result):
    rank0, rank1 = (torch.load(torchrun_result / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert any(not torch.equal(rank0["initial"][k], rank1["initial"][k]) for k in rank0["initial"]), "ranks should start apart"
    for key, value in rank0["final"].items():
        assert torch.equal(value, rank1["final"][key]), f"{key} differs between ranks"
        assert not torch.equal(value, rank0["initial"][key]), f"{key} was not trained"


def test_ranks_see_disjoint_shards_and_agree_on_metrics(torchrun_result):
    logs = [json.loads((torchrun_result / f"rank{r}.json").read_text()) for r in (0, 1)]
    per_epoch = N_SAMPLES // 2
    for epoch in range(3):
        shard0, shard1 = (set(log["seen"][epoch * per_epoch:(epoch + 1) * per_epoch]) for log in logs)
        assert len(shard0) == len(shard1) == per_epoch
        assert not shard0 & shard1 and shard0 | shard1 == set(range(N_SAMPLES))
    assert logs[0]["history"] == [{**h, "time_s": logs[0]["history"][i]["time_s"]} for i, h in enumerate(logs[1]["history"])]
    assert logs[0]["best_epoch"] == logs[1]["best_epoch"]
    losses = [h["loss"] for h in logs[0]["history"]]
    assert losses[-1] < losses[0]


def test_checkpoint_holds_the_shared_final_weights(torchrun_result):
    files = sorted(p.name for p in (torchrun_result / "checkpoints").iterdir())
    assert files == ["best.pt", "latest.pt"]
    state = torch.load(torchrun_result / "checkpoints" / "latest.pt", weights_only=True)
    final = torch.load(torchrun_result / "rank0.pt", weights_only=True)["final"]
    assert state["epoch"] == 2 and all(torch.equal(state["model"][k], v) for k, v in final.items())


if __name__ == "__main__":
    worker(Path(sys.argv[1]))


def test_training_pipeline_under_torchrun(tmp_path):
    """`torchrun … -m scarenhance train`: both trainers in one pair of processes (the process group must
    survive from one trainer to the next), rank 0 alone writing state, targets and models."""
    from scarenhance.phantom import write_cases

    write_cases(tmp_path / "data", n=4, seed=9100, n_slices=3, size=(80, 80))
    settings = ["segmentation.epochs=2", "segmentation.batch_size=2", "segmentation.crop=64", "segmentation.steps_per_epoch=2",
                "diffusion.epochs=2", "diffusion.batch_size=2", "diffusion.crop_size=32", "diffusion.samples_per_epoch=4",
                "diffusion.val_crops=4", "diffusion.sample_every=0", 'diffusion.roi_source="labels"']
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "scarenhance",
           "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--device", "cpu",
           "--stop-after", "diffusion"] + [a for s in settings for a in ("--set", s)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "2 processes" in output
    state = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert [state["steps"][s]["status"] for s in ("targets", "segmentation", "diffusion", "evaluation")] == \
        ["done", "done", "done", "pending"]
    assert output.count("[segmentation] starting") == 1  # logged by rank 0 only
    for name in ("run-heart-seg", "run-scar-diffusion"):
        assert (tmp_path / "run" / "models" / name / "models" / "model.pt").is_file()
