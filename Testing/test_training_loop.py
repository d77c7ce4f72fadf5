"""The shared training machinery: loss falls, resume is exact, checkpoints survive kills, DDP keeps ranks equal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from scarenhance.errors import Cancelled, InputError, ModelError
from scarenhance.training import FitConfig, fit, init_distributed, make_loader
from scarenhance.training import checkpoint as ckpt

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.5
    return TensorDataset(x, y)


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def mse_step(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def loader(shuffle=False):
    ctx = init_distributed("cpu")
    return make_loader(regression_data(), ctx, batch_size=8, shuffle=shuffle, seed=3)


def quiet(*_):
    pass


def test_loss_falls_and_history_is_complete(tmp_path):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    result = fit(model, opt, loader(shuffle=True), mse_step, config=FitConfig(epochs=6, checkpoint_dir=tmp_path, log_dir=tmp_path / "tb"), log=quiet)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 6 and result.epochs_done == 6
    assert losses[-1] < 0.5 * losses[0], losses
    assert any((tmp_path / "tb").iterdir()), "TensorBoard wrote no event file"
    assert ckpt.latest_checkpoint(tmp_path) is not None


def test_keep_best_returns_the_weights_of_the_best_epoch(tmp_path):
    metrics = iter([0.5, 0.9, 0.7])
    seen = {}

    def validate(model):
        seen[len(seen)] = {k: v.clone() for k, v in model.state_dict().items()}
        return next(metrics)

    best_calls = []
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = fit(model, opt, loader(), mse_step, validate, config=FitConfig(epochs=3, checkpoint_dir=tmp_path),
                 on_best=lambda e, m, w: best_calls.append((e, m)), log=quiet)
    assert (result.best_epoch, result.best_metric) == (1, 0.9)
    assert best_calls == [(0, 0.5), (1, 0.9)]
    for k, v in result.best_weights.items():
        assert torch.equal(v, seen[1][k]), k
    weights, epoch, metric = ckpt.load_best_weights(tmp_path)
    assert (epoch, metric) == (1, 0.9) and torch.equal(weights["0.weight"], seen[1]["0.weight"])


def _precision_seen(monkeypatch, native_bf16: bool, amp: bool):
    """(autocast on?, its dtype) inside train_step and validate, on a CPU said to have native bf16 or not."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16, raising=False)
    seen = []

    def record():
        on = torch.is_autocast_enabled("cpu")
        seen.append((on, torch.get_autocast_dtype("cpu") if on else torch.float32))

    def step(model, batch):
        record()
        out = model(batch[0])
        seen.append(("output", out.dtype))
        return torch.nn.functional.mse_loss(out.float(), batch[1])

    def validate(model):
        record()
        return 0.0

    model = make_model()
    fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), loader(), step, validate=validate,
        config=FitConfig(epochs=1, amp=amp, max_steps_per_epoch=1), log=quiet)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    return seen


def test_cpu_training_uses_bf16_only_where_the_cpu_has_it_and_amp_is_on(monkeypatch):
    from scarenhance.device import autocast_dtype

    bf16 = (True, torch.bfloat16)
    assert _precision_seen(monkeypatch, native_bf16=True, amp=True) == [bf16, ("output", torch.bfloat16), bf16]
    assert autocast_dtype(torch.device("cpu")) == torch.bfloat16
    fp32 = (False, torch.float32)
    assert _precision_seen(monkeypatch, native_bf16=False, amp=True) == [fp32, ("output", torch.float32), fp32]
    assert autocast_dtype(torch.device("cpu")) is None
    assert _precision_seen(monkeypatch, native_bf16=True, amp=False) == [fp32, ("output", torch.float32), fp32]


def test_resume_with_a_new_learning_rate_keeps_the_optimizer_state_but_uses_the_new_rate(tmp_path):
    first = make_model()
    fit(first, torch.optim.Adam(first.parameters(), lr=1e-2), loader(), mse_step,
        config=FitConfig(epochs=2, checkpoint_dir=tmp_path), log=quiet)
    resumed = make_model()
    opt = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    lines = []
    result = fit(resumed, opt, loader(), mse_step, config=FitConfig(epochs=4, checkpoint_dir=tmp_path, resume_lr=1e-3), log=lines.append)
    assert [h["lr"] for h in result.history] == [1e-2, 1e-2, 1e-3, 1e-3]
    assert opt.state_dict()["state"][0]["step"].item() == 4 * 8  # Adam's moments and step count carried over
    assert any("learning rate 1.00e-03 from now on (the checkpoint's was 1.00e-02)" in line for line in lines)


def test_resume_continues_epochs_and_optimizer_state_exactly(tmp_path):
    # 4 epochs in one run ...
    straight = make_model()
    opt = torch.optim.Adam(straight.parameters(), lr=1e-2)
    fit(straight, opt, loader(), mse_step, config=FitConfig(epochs=4), log=quiet)

    # ... equal 2 epochs, an interruption, and 2 more resumed from latest.pt by fresh objects.
    first = make_model()
    fit(first, torch.optim.Adam(first.parameters(), lr=1e-2), loader(), mse_step,
        config=FitConfig(epochs=2, checkpoint_dir=tmp_path), log=quiet)
    resumed = make_model(seed=99)  # different initial weights: they must be replaced by the checkpoint's
    opt2 = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    lines = []
    result = fit(resumed, opt2, loader(), mse_step, config=FitConfig(epochs=4, checkpoint_dir=tmp_path), log=lines.append)
    assert result.start_epoch == 2 and result.epochs_done == 4
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    assert "resuming after epoch 2/4" in lines[0]
    assert opt2.state_dict()["state"][0]["step"].item() == 4 * 8  # Adam's step counter went on, not restarted
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_finished_run_is_not_trained_again_and_existing_run_is_not_overwritten(tmp_path):
    model = make_model()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(), mse_step, config=FitConfig(epochs=1, checkpoint_dir=tmp_path), log=quiet)
    again = fit(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(), mse_step, config=FitConfig(epochs=1, checkpoint_dir=tmp_path), log=quiet)
    assert again.start_epoch == 1 and again.epochs_done == 1 and again.best_weights is not None
    with pytest.raises(InputError, match="already holds a training run"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(), mse_step,
            config=FitConfig(epochs=2, checkpoint_dir=tmp_path, resume=False), log=quiet)


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    model = make_model()
    path = ckpt.save_checkpoint(tmp_path, model=model, optimizer=None, epoch=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="latest.pt.*unreadable"):
        ckpt.load_checkpoint(path, model=model)
    torch.save({"something": "else"}, path)
    with pytest.raises(ModelError, match="not a ScarEnhance training checkpoint"):
        ckpt.load_checkpoint(path, model=model)


def test_cancel_stops_between_steps_and_nan_loss_is_reported(tmp_path):
    model = make_model()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(), mse_step, config=FitConfig(epochs=1), cancel=cancel, log=quiet)
    with pytest.raises(RuntimeError, match="loss became nan at epoch 1, step 1"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.01), loader(), lambda m, b: mse_step(m, b) * float("nan"),
            config=FitConfig(epochs=1), log=quiet)


KILL_WRITER = textwrap.dedent(
    """
    import sys, torch
    from scarenhance.training import checkpoint as ckpt
    model = torch.nn.Linear(1000, 2000)  # 8 MB of weights: each write takes a while
    i = 0
    print("ready", flush=True)
    while True:
        with torch.no_grad():
            model.bias.fill_(i)
        ckpt.save_checkpoint(sys.argv[1], model=model, optimizer=None, epoch=i)
        print(i, flush=True)
        i += 1
    """
)


def test_kill_during_checkpoint_write_never_leaves_a_broken_latest(tmp_path):
    """SIGKILL a process that rewrites latest.pt in a loop, at several moments: latest.pt always loads."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "ScarEnhance"), OMP_NUM_THREADS="1")
    epochs = []
    for delay in (0.3, 0.45, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        # two complete writes first (however slow a loaded machine is), then a kill at some moment of later ones
        assert [proc.stdout.readline().strip() for _ in range(2)] == [b"0", b"1"]
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = torch.nn.Linear(1000, 2000)
        state = ckpt.load_checkpoint(tmp_path / ckpt.LATEST, model=model)  # must never raise
        assert torch.all(model.bias == state.epoch)  # the file is one complete, consistent write
        epochs.append(state.epoch)
    assert epochs[-1] >= 1


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from torch.utils.data import TensorDataset
    from scarenhance.training import FitConfig, cleanup, fit, init_distributed, make_loader, wrap_model
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx.world_size == 2, ctx
    torch.manual_seed(ctx.rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = wrap_model(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)), ctx)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g); y = x.sum(1, keepdim=True)
    loader = make_loader(TensorDataset(x, y), ctx, batch_size=8, shuffle=True, seed=1)
    assert len(loader) == 4  # each rank sees half the data
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
    validate = lambda m: (float(torch.nn.functional.mse_loss(m(x), y)) + ctx.rank, 1.0)
    result = fit(model, opt, loader, step, validate, config=FitConfig(epochs=3, checkpoint_dir=sys.argv[1], maximize=False), ctx=ctx)
    torch.save({"weights": result.best_weights, "metric": result.best_metric}, f"{sys.argv[1]}/rank{ctx.rank}.pt")
    # a trainer nested in a pipeline reuses the open group and its cleanup leaves it open for the caller
    inner = init_distributed("cpu")
    assert ctx.owns_group and not inner.owns_group
    cleanup(inner)
    import torch.distributed as dist
    assert dist.is_initialized()
    dist.barrier()
    cleanup(ctx)
    assert not dist.is_initialized()
    # Everything this test checks is written. Leave without interpreter finalization: a process that built
    # a DDP model keeps gloo's worker and TCP threads after destroy_process_group (measured with torch
    # 2.13: 4 threads before and after, 1 without DDP), and finalizing Python beside them aborted one
    # rank once in CI ("terminate called without an active exception"). An error above still fails.
    import os
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
    """
)


def test_torchrun_two_cpu_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO / "ScarEnhance"), OMP_NUM_THREADS="1")
    out = tmp_path / "run"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out)],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
    assert r0["metric"] == r1["metric"]  # the metric is averaged over ranks: the same keep-best decision
    assert proc.stderr.count("train epoch") == 3  # one log line per epoch, from rank 0 only
    assert (out / "latest.pt").is_file()
