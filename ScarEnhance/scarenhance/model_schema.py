"""What a model folder's configs may say. A model folder is data, never code.

Sites exchange model folders, so their JSON is read here as plain data and checked before anything is
built from it:

- no MONAI expressions or references: a string starting with ``$`` (evaluated by MONAI's ConfigParser),
  ``@`` (a reference) or ``%`` (a macro) is refused anywhere in any config;
- no MONAI special keys (``_target_``, ``_requires_``, ``_disabled_``, ``_mode_``, ``_desc_``) except the
  one ``network_def._target_`` of inference.json, which must name one of `NETWORKS`;
- the network's arguments are checked against that network's schema (known keys, JSON types, ranges);
- no NaN/Infinity constants, no duplicate keys, at most `MAX_CONFIG_BYTES` per file.

Every refusal is a ModelError naming the file and the key. The network is instantiated by
`bundle.build_network` with a plain call of the allow-listed class: MONAI's ConfigParser is never used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Optional

from .diffusion.presets import PREDICTIONS, PRESETS
from .errors import ModelError

MAX_CONFIG_BYTES = 1 << 20  # our configs are a few KB; a larger one is not ours
SPECIAL_KEY = re.compile(r"^_[a-z]+_$")  # MONAI's _target_, _requires_, _disabled_, _mode_, _desc_
EXPRESSION_PREFIXES = ("$", "@", "%")
TARGET_KEY = "network_def._target_"

Check = Callable[[Any], Optional[str]]  # None when the value is fine, else what is wrong with it


def read_json(path: Path) -> Any:
    """A config file as plain data (nothing evaluated); ModelError naming the file when it is not clean JSON."""
    path = Path(path)
    if path.is_symlink():
        raise ModelError("is a symbolic link; a model folder holds plain files", path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ModelError(f"config file of {size} bytes is larger than the {MAX_CONFIG_BYTES} a model config may be", path)
        text = path.read_text(encoding="utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise ModelError(f"unreadable config file ({e.__class__.__name__}: {e})", path) from e
    except json.JSONDecodeError as e:
        raise ModelError(f"not valid JSON ({e})", path) from e
    except ValueError as e:  # from the hooks below
        raise ModelError(str(e), path) from e


def check_data_only(data: Any, path: Path, allowed_target: "str | None" = None) -> None:
    """Refuse MONAI expressions, references, macros and special keys anywhere in `data` (see module docstring)."""
    try:
        items = list(_walk(data))
    except RecursionError:
        raise ModelError("nested too deeply to be a model config", path) from None
    for key, name, value in items:
        if name is not None and SPECIAL_KEY.match(name) and key != allowed_target:
            raise ModelError(f"key {key!r}: MONAI special keys are not allowed here (a model folder is data, "
                             f"not code; only {TARGET_KEY} of inference.json may name a network)", path)
        if isinstance(value, str) and value.startswith(EXPRESSION_PREFIXES):
            raise ModelError(f"key {key!r}: the value {_short(value)!r} starts with {value[0]!r}, a MONAI expression, "
                             "reference or macro; a model folder is data and may not hold code", path)


def check_inference(config: Any, path: Path) -> dict:
    """inference.json: exactly {"network_def": {...}}; returns the checked network_def."""
    check_data_only(config, path, allowed_target=TARGET_KEY)
    if not isinstance(config, dict) or "network_def" not in config:
        raise ModelError("key 'network_def' is missing (expected {\"network_def\": {\"_target_\": ..., ...}})", path)
    extra = sorted(set(config) - {"network_def"})
    if extra:
        raise ModelError(f"key {extra[0]!r} is not allowed (inference.json holds only 'network_def')", path)
    check_network_def(config["network_def"], path)
    return config["network_def"]


def check_metadata(meta: Any, path: Path) -> dict:
    """metadata.json: free-form data, plus the scarenhance section the engine relies on."""
    check_data_only(meta, path)
    if not isinstance(meta, dict) or not isinstance(meta.get("scarenhance"), dict):
        raise ModelError("key 'scarenhance' is missing or not an object (kind and weights_sha256 live there)", path)
    own = meta["scarenhance"]
    if not isinstance(own.get("kind"), str):
        raise ModelError(f"key 'scarenhance.kind' must be a string, got {own.get('kind')!r}", path)
    digest = own.get("weights_sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise ModelError(f"key 'scarenhance.weights_sha256' must be 64 hex digits, got {_short(repr(digest))}", path)
    return meta


def check_network_def(network_def: Any, path: "Path | None" = None) -> dict:
    """Check a network definition against `NETWORKS`; returns it. ModelError naming the key otherwise."""
    where = "network_def"
    if not isinstance(network_def, dict):
        raise ModelError(f"key {where!r} must be an object, got {type(network_def).__name__}", path)
    target = network_def.get("_target_")
    if target not in NETWORKS:
        raise ModelError(f"key '{where}._target_': network {_short(repr(target))} is not allowed "
                         f"(a model folder may name only {', '.join(NETWORKS)})", path)
    schema, required = NETWORKS[target]
    for name, value in network_def.items():
        if name == "_target_":
            continue
        if name not in schema:
            raise ModelError(f"key '{where}.{name}' is not an argument {target} may be given here "
                             f"(allowed: {', '.join(sorted(schema))})", path)
        problem = schema[name](value)
        if problem:
            raise ModelError(f"key '{where}.{name}': {problem}, got {_short(repr(value))}", path)
    missing = [name for name in required if name not in network_def]
    if missing:
        raise ModelError(f"key '{where}.{missing[0]}' is missing ({target} needs {', '.join(required)})", path)
    return network_def


# -- value checks ---------------------------------------------------------------------------------------
def _integer(lo: int, hi: int) -> Check:
    def check(v):
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"must be an integer from {lo} to {hi}"
    return check


def _number(lo: float, hi: float) -> Check:
    def check(v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"must be a number from {lo} to {hi}"
    return check


def _list_of(item: Check, min_len: int, max_len: int, what: str) -> Check:
    def check(v):
        ok = isinstance(v, list) and min_len <= len(v) <= max_len and all(item(x) is None for x in v)
        return None if ok else f"must be a list of {min_len} to {max_len} {what}"
    return check


def _either(*checks: Check, what: str) -> Check:
    return lambda v: None if any(c(v) is None for c in checks) else f"must be {what}"


def _choice(*values) -> Check:
    folded = {str(x).lower() for x in values}
    return lambda v: None if isinstance(v, str) and v.lower() in folded else f"must be one of {', '.join(map(str, values))}"


def _boolean(v) -> Optional[str]:
    return None if isinstance(v, bool) else "must be true or false"


def _exactly(*values) -> Check:
    return lambda v: None if any(v == x and type(v) is type(x) for x in values) else \
        f"must be {' or '.join(map(repr, values))} (what the engine feeds and reads)"



_width = _integer(1, 4096)
_widths = _list_of(_width, 2, 8, "integers from 1 to 4096")
_kernel = _either(_integer(1, 7), _list_of(_integer(1, 7), 2, 2, "integers from 1 to 7"), what="an integer from 1 to 7 or a pair")

# Arguments of monai.networks.nets.UNet that a heart model may set (spatial_dims/in/out fixed by the engine).
UNET = {
    "spatial_dims": _exactly(2),
    "in_channels": _exactly(1),
    "out_channels": _exactly(1, 3),  # a heart ROI (round-1 models), or background / blood pool / myocardium
    "channels": _widths,
    "strides": _list_of(_integer(1, 4), 1, 7, "integers from 1 to 4"),
    "kernel_size": _kernel,
    "up_kernel_size": _kernel,
    "num_res_units": _integer(0, 8),
    "act": _choice("PRELU", "RELU", "LEAKYRELU", "ELU", "GELU", "SWISH", "MISH", "TANH", "SIGMOID"),
    "norm": _choice("batch", "instance"),
    "dropout": _number(0.0, 1.0),
    "bias": _boolean,
    "adn_ordering": lambda v: None if isinstance(v, str) and re.fullmatch(r"[NDA]{1,3}", v) else "must be letters N, D, A",
}
# The preset and the DiffusionModelUNet overrides ConditionalDenoiser accepts (its in/out channels are fixed).
DENOISER = {
    "preset": _choice(*PRESETS),
    "prediction": _choice(*PREDICTIONS),
    "roi_normalised": _boolean,
    "myocardium_input": _boolean,
    "scar_head": _boolean,
    "channels": _widths,
    "attention_levels": _list_of(lambda v: _boolean(v), 2, 8, "true/false values"),
    "num_res_blocks": _either(_integer(1, 8), _list_of(_integer(1, 8), 2, 8, "integers"), what="an integer from 1 to 8 or a list of them"),
    "num_head_channels": _either(_width, _widths, what="an integer from 1 to 4096 or a list of them"),
    "norm_num_groups": _integer(1, 512),
    "norm_eps": _number(1e-12, 1e-1),
    "resblock_updown": _boolean,
    "transformer_num_layers": _integer(1, 8),
}
# _target_ → (argument schema, required arguments)
NETWORKS: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    "monai.networks.nets.UNet": (UNET, ("spatial_dims", "in_channels", "out_channels", "channels", "strides")),
    "scarenhance.diffusion.network.ConditionalDenoiser": (DENOISER, ("preset",)),
}


# -- helpers ---------------------------------------------------------------------------------------------
def _walk(data: Any, prefix: str = ""):
    """(dotted key, the dict key itself or None for a list item, value) for every value in nested data."""
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key, k, v
            yield from _walk(v, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            key = f"{prefix}[{i}]"
            yield key, None, v
            yield from _walk(v, key)


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise ValueError(f"key {k!r} appears twice (JSON readers disagree on which one counts)")
    return dict(pairs)


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
