"""Model folders for tests: the bundle layout with a recorded SHA-256, and arbitrary bytes as weights
(the registry checks files; it never loads them)."""

from __future__ import annotations

from pathlib import Path


def make_model_folder(folder: Path, kind: str, payload: bytes = b"weights") -> Path:
    """A model folder in the bundle layout (configs/metadata.json + models/model.pt) with its checksum."""
    import hashlib
    import json

    (folder / "models").mkdir(parents=True)
    (folder / "configs").mkdir()
    (folder / "models" / "model.pt").write_bytes(payload)
    meta = {"version": "0.1.0", "description": f"test {kind} model",
            "scarenhance": {"kind": kind, "weights_sha256": hashlib.sha256(payload).hexdigest()}}
    (folder / "configs" / "metadata.json").write_text(json.dumps(meta))
    (folder / "configs" / "inference.json").write_text(json.dumps({"network_def": {
        "_target_": "monai.networks.nets.UNet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
        "channels": [4, 8], "strides": [2]}}))  # passes bundle's schema check; never built
    return folder
