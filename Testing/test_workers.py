"""DataLoader workers draw their own random streams: two workers never repeat each other's crops or
augmentations, and a fixed seed gives the same batches again (training.workers, via make_loader)."""

import numpy as np
import pytest
import torch

from scarenhance import labels as L
from scarenhance.diffusion.data import CropDataset, SlicePair
from scarenhance.training import make_loader
from scarenhance.training.distributed import DistributedContext
from scarenhance.training.workers import worker_seed


def _one_pair() -> SlicePair:
    """A single slice, so items 0 and 1 (taken by workers 0 and 1) crop the same pair."""
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.uint8)
    labels[16:48, 16:48] = L.MYOCARDIUM
    labels[24:40, 24:40] = L.BLOOD
    labels[20:24, 20:44] = L.SCAR
    image = rng.uniform(0, 255, (64, 64)).astype(np.float32)
    return SlicePair("P", 0, image, image.copy(), labels > 0, labels)


def _batches(dataset, seed: int, key: str, rank: int = 0) -> list[torch.Tensor]:
    ctx = DistributedContext(rank=rank)
    loader = make_loader(dataset, ctx, batch_size=1, shuffle=False, seed=seed, num_workers=2)
    return [batch[key][0] for batch in loader]  # item i comes from worker i % 2


def _all_different(items: list[torch.Tensor]) -> bool:
    return all(not torch.equal(a, b) for i, a in enumerate(items) for b in items[i + 1:])


def test_diffusion_crops_differ_between_workers_and_repeat_with_the_seed():
    data = CropDataset([_one_pair()], crop_size=16, length=8, seed=0)
    first = _batches(data, seed=5, key="x0")
    assert len(first) == 8 and _all_different(first)  # worker 0's items 0, 2, … never equal worker 1's 1, 3, …
    again = _batches(data, seed=5, key="x0")
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # fixed seed: the same crops
    other = _batches(data, seed=6, key="x0")
    assert not any(torch.equal(a, b) for a, b in zip(first, other))
    rank1 = _batches(data, seed=5, key="x0", rank=1)  # another torchrun process: other crops
    assert not any(torch.equal(a, b) for a, b in zip(first, rank1))


def test_segmentation_crops_differ_between_workers_and_repeat_with_the_seed():
    from scarenhance.segmentation.data import CropDataset

    pair = _one_pair()
    image = (pair.image / 255.0).astype(np.float32)
    dataset = CropDataset([image] * 6, [pair.roi.astype(np.uint8)] * 6, crop=32, seed=0)  # one slice, six times
    ctx = DistributedContext()

    def run(seed):
        loader = make_loader(dataset, ctx, batch_size=1, shuffle=False, seed=seed, num_workers=2)
        return [batch["image"][0] for batch in loader]

    first = run(3)
    assert len(first) == 6 and _all_different(first)
    assert all(torch.equal(a, b) for a, b in zip(first, run(3)))


def test_worker_seeds_are_distinct_per_worker_and_rank():
    seeds = {worker_seed(base, rank) for base in range(100, 108) for rank in range(4)}
    assert len(seeds) == 32
    assert worker_seed(7, 0) == worker_seed(7, 0) == int(np.random.SeedSequence([7, 0]).generate_state(1)[0])
    with pytest.raises(ValueError):
        worker_seed(-1, 0)  # torch's worker seeds are never negative; SeedSequence refuses them
