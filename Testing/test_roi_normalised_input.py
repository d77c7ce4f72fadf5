"""The ROI-normalised third input of the denoiser (diffusion/network.py: roi_zscores, roi_normalised=True).

On real LGE min-max scaling crowds the heart into a few grey levels under bright outliers; the third input
shows the original as z-scores of its own ROI, so its contrast is the same whatever the scale.
"""

import json

import numpy as np
import pytest
import torch

from scarenhance.diffusion.network import ConditionalDenoiser, network_def, roi_zscores
from scarenhance.diffusion.sampler import sample
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.diffusion.train import DiffusionTrainConfig, train_diffusion
from scarenhance.errors import InputError

from test_diffusion import TINY, _crops


def test_zscores_are_those_of_the_roi_pixels_clipped_and_halved():
    """ROI pixels 0.1, 0.3 (mean 0.2, SD 0.1): they become ∓1 / 2; a pixel outside the ROI at 0.9 is
    7 SDs above the mean, clipped to 4 and halved."""
    x = torch.tensor([[[[0.1, 0.3, 0.9, 0.2]]]])
    roi = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(roi_zscores(x, roi).numpy().ravel(), [-0.5, 0.5, 2.0, 0.0], atol=1e-6)


def test_zscores_do_not_depend_on_where_the_heart_sits_on_the_scale():
    """The same heart crowded into a tenth of the range under an outlier, or spread over it, gives the same
    third input inside the ROI: what min-max scaling took away, this channel gives back."""
    torch.manual_seed(0)
    x, roi = torch.rand(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    roi[:, :, 4:12, 4:12] = 1
    crowded = 0.1 * x - 0.9
    inside = roi > 0
    np.testing.assert_allclose(roi_zscores(crowded, roi)[inside].numpy(), roi_zscores(x, roi)[inside].numpy(), atol=1e-5)


def test_a_flat_or_empty_roi_gives_finite_values():
    x = torch.full((2, 1, 8, 8), 0.25)
    roi = torch.zeros(2, 1, 8, 8)
    roi[0, :, 2:5, 2:5] = 1  # item 0: a flat ROI (SD 0 → one grey level); item 1: no ROI pixel at all
    z = roi_zscores(x, roi)
    assert torch.isfinite(z).all() and float(z[0].abs().max()) == 0.0


def test_the_network_takes_the_roi_and_refuses_to_run_without_it():
    net = ConditionalDenoiser(prediction="residual", roi_normalised=True, **TINY).eval()
    assert net.unet.conv_in.conv.weight.shape[1] == 3
    x, t = torch.rand(1, 2, 16, 16) * 2 - 1, torch.tensor([100])
    with pytest.raises(ValueError, match="pass roi"):
        net(x, t)
    assert net(x, t, torch.ones(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_the_roi_changes_only_the_statistics_not_where_the_output_changes():
    """Two ROIs whose pixels have the same mean and SD give the same output: the outline is not an input."""
    torch.manual_seed(1)
    net = ConditionalDenoiser(prediction="residual", roi_normalised=True, **TINY).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    x = torch.zeros(1, 2, 16, 16)
    x[0, 1, :, ::2] = 0.5  # columns alternate 0.5 / 0: any ROI of whole column pairs has the same statistics
    a, b = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    a[..., 2:6, 2:6], b[..., 8:14, 6:10] = 1, 1
    t = torch.tensor([50])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t, a), net(x, t, b))
        other = torch.zeros(1, 1, 16, 16)
        other[..., 2:6, 2:5] = 1  # two bright columns, one dark: another mean, another output
        assert float((net(x, t, a) - net(x, t, other)).abs().max()) > 1e-4


def test_the_sampler_gives_the_network_its_roi():
    x0, mask = _crops()
    net = ConditionalDenoiser(prediction="residual", roi_normalised=True, **TINY).eval()
    out = sample(net, x0, mask, make_schedule(), lam=20, k=1, steps=4, seed=0)
    assert out.shape == (1,) + x0.shape and np.isfinite(out).all()


def test_a_roi_normalised_model_round_trips_through_its_folder(tmp_path):
    from scarenhance.bundle import load_bundle, save_bundle

    torch.manual_seed(2)
    net = ConditionalDenoiser("cpu-small", "residual", True, **TINY)
    definition = network_def("cpu-small", "residual", True, **TINY)
    assert definition["roi_normalised"] is True and "roi_normalised" not in network_def("cpu-small", "residual", **TINY)
    save_bundle(tmp_path / "m", net, definition, {"version": "0.0.1", "scarenhance": {"kind": "scar-diffusion"}})
    loaded, _ = load_bundle(tmp_path / "m", kind="scar-diffusion")
    assert loaded.roi_normalised
    x, t, roi = torch.rand(1, 2, 16, 16), torch.tensor([100]), torch.ones(1, 1, 16, 16)
    assert torch.equal(net.eval()(x, t, roi), loaded(x, t, roi))


def _data(tmp_path):
    from scarenhance.phantom import write_cases

    data = tmp_path / "data"
    write_cases(data, 2, seed=5, n_slices=2, size=(64, 64), spacing=1.6)
    return data


def train_then_add_an_input(tmp_path, **added):
    """A two-input model trained one epoch ("two"), then a run that adds an input (`added`, config fields)
    starting from it at learning rate 0 ("three"): (data, config of "two", two, three, the second run's log)."""
    from scarenhance.diffusion import load_diffusion_model

    data = _data(tmp_path)
    config = DiffusionTrainConfig(network=TINY, prediction="residual", epochs=1, batch_size=2, crop_size=32,
                                  samples_per_epoch=2, lr=1e-3, t_max=300, val_crops=2)
    train_diffusion(data, tmp_path / "two", config, device="cpu", log=lambda m: None)
    logs = []
    frozen = DiffusionTrainConfig(**{**config.__dict__, "lr": 0.0, **added, "init_from": str(tmp_path / "two")})
    train_diffusion(data, tmp_path / "three", frozen, device="cpu", log=logs.append)
    return data, config, load_diffusion_model(tmp_path / "two"), load_diffusion_model(tmp_path / "three"), logs


def test_fine_tuning_a_two_input_model_with_the_third_input_starts_where_that_model_stands(tmp_path):
    """The added input's first-layer weights start at zero: at learning rate 0 the new model gives the old
    one's output exactly, and its folder records the third input."""
    data, config, two, three, logs = train_then_add_an_input(tmp_path, roi_normalised=True)
    assert any("zero weights" in line for line in logs)
    assert three.roi_normalised and three.metadata["scarenhance"]["roi_normalised"] is True
    assert "roi" in three.metadata["network_data_format"]["inputs"]
    assert json.loads((tmp_path / "three" / "configs" / "inference.json").read_text())["network_def"]["roi_normalised"]
    torch.manual_seed(3)
    x, t, roi = torch.rand(2, 2, 32, 32) * 2 - 1, torch.tensor([20, 200]), (torch.rand(2, 1, 32, 32) > 0.5).float()
    with torch.no_grad():
        torch.testing.assert_close(three(x, t, roi), two(x, t, roi))
    # and back: a model that needs the third input cannot start a run without it
    with pytest.raises(InputError, match="--roi-normalised"):
        train_diffusion(data, tmp_path / "back", DiffusionTrainConfig(**{**config.__dict__, "init_from": str(tmp_path / "three")}),
                        device="cpu", log=lambda m: None)


def test_the_command_line_flag_reaches_the_config(monkeypatch, tmp_path):
    from scarenhance import cli
    import scarenhance.diffusion.train as train

    seen = {}
    monkeypatch.setattr(train, "train_diffusion", lambda data, out, config, **kw: seen.setdefault("config", config))
    cli.main(["train-diffusion", "--data", str(_data(tmp_path)), "--out", str(tmp_path / "m"), "--roi-normalised"])
    assert seen["config"].roi_normalised is True
