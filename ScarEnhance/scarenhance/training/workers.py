"""Random streams of DataLoader worker processes, so workers never repeat each other's crops.

A worker process starts as a copy of the dataset, random generators included: without a reseed, two
workers draw the same crops and the same augmentations (numpy generators and MONAI's Randomizable
transforms are copied with their state). `seed_worker` runs in each worker when it starts and gives
its dataset a stream of its own, from SeedSequence([worker seed, rank]):

- the worker seed is torch's ``base_seed + worker_id``; the base seed is drawn from the loader's
  generator, which `make_loader` seeds with the run's seed, so a fixed seed gives the same crops again
  (for the same number of workers; with persistent workers each worker keeps its stream across epochs);
- the rank keeps the processes of a torchrun job apart (their loaders share the seed).

Datasets with a ``reseed(seed)`` method (diffusion.data.CropDataset) get it called; MONAI datasets get
every Randomizable transform they hold reseeded (monai.data.utils.set_rnd).
"""

from __future__ import annotations

import sys

import numpy as np
import torch


def worker_seed(base: int, rank: int) -> int:
    """A 32-bit seed for a worker whose torch seed is `base`, in process `rank` of the job."""
    return int(np.random.SeedSequence([int(base), int(rank)]).generate_state(1, dtype=np.uint32)[0])


def seed_worker(worker_id: int, rank: int = 0) -> None:
    """DataLoader worker_init_fn (bind the rank with functools.partial): reseed the worker's dataset."""
    info = torch.utils.data.get_worker_info()
    seed = worker_seed(info.seed, rank)
    reseed = getattr(info.dataset, "reseed", None)
    if callable(reseed):
        reseed(seed)
    elif "monai" in sys.modules:  # a MONAI dataset was unpickled or forked here: monai is loaded already
        from monai.data.utils import set_rnd

        set_rnd(info.dataset, seed)
