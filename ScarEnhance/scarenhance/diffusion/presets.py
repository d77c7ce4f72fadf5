"""The denoiser's named sizes: plain keyword arguments of monai.networks.nets.DiffusionModelUNet.

Apart from network.py (no torch here) so the command line lists them and model folders are checked
against them without importing torch.
"""

from __future__ import annotations

# Presets are plain keyword arguments of monai.networks.nets.DiffusionModelUNet.
PRESETS: dict[str, dict] = {
    # Trains on a 2-core CPU in half an hour (~1.1 M parameters). Attention only at the lowest level
    # (1/4 resolution): attention at higher resolutions dominates CPU time (measured on 2 CPU cores, one
    # 128² crop: 65 ms per forward with attention at the lowest level, 543 ms at the two lowest).
    "cpu-small": dict(
        channels=(32, 64, 64),
        attention_levels=(False, False, True),
        num_res_blocks=1,
        num_head_channels=32,
        norm_num_groups=32,
    ),
    # The paper's SR3 U-Net, as closely as DiffusionModelUNet allows: inner width 32, multipliers
    # 1,2,4,8,8, three residual blocks per level, self-attention at the 16×16 level of a 256² input
    # (~32 M parameters). SR3's dropout has no counterpart here.
    "gpu-paper": dict(
        channels=(32, 64, 128, 256, 256),
        attention_levels=(False, False, False, False, True),
        num_res_blocks=3,
        num_head_channels=32,
        norm_num_groups=32,
    ),
}
DEFAULT_PRESET = "cpu-small"

# What the U-Net's output means (network.py). "epsilon": the noise ε itself (the paper's ε_θ).
# "residual": the change x̂_0 − x_0 from the conditioning slice, turned into ε̂ by the schedule, so an
# untrained or unsure network leaves the slice as it is instead of inventing a change.
PREDICTIONS = ("epsilon", "residual")
