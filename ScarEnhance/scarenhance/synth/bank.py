"""A bank of synthetic slices made once before training, in parallel processes.

On a 2-core CPU, rendering on the fly inside the training loop would halve the training steps; a bank
of a few thousand slices, each with its own anatomy, contrast and acquisition, costs ~0.15 s a slice
and core once (6,256 slices in 7.5 min on 2 cores, 2026-12), and the crop datasets draw new crops and
intensity changes from it every epoch.

    bank = make_bank(count=6000, seed=1)          # slice i is synth_slice([seed, i]): reproducible
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ..progress import ProgressFn, no_progress
from .sample import SynthRanges, synth_slice


@dataclass
class SynthBank:
    images: list  # (H, W) float32 raw intensities
    classes: list  # (H, W) uint8 heart classes
    canonical: list  # (H, W) uint8 canonical labels
    seed: int

    def __len__(self) -> int:
        return len(self.images)


def _one(args):
    seed, index, ranges = args
    s = synth_slice([seed, index], ranges)
    return s.image, s.classes, s.canonical


def make_bank(count: int, seed: int, ranges: "SynthRanges | None" = None, processes: "int | None" = None,
              progress: ProgressFn = no_progress) -> SynthBank:
    """`count` slices; slice i is synth_slice([seed, i], ranges) whatever the number of processes."""
    ranges = ranges or SynthRanges()
    processes = processes or min(4, os.cpu_count() or 1)
    jobs = [(int(seed), i, ranges) for i in range(int(count))]
    images, classes, canonical = [], [], []
    if processes <= 1 or count < 64:
        results = map(_one, jobs)
    else:
        # spawned, not forked: a fork of a process whose torch already ran OpenMP threads (a network built or
        # loaded before the bank, as `train-seg --init-from` does) deadlocks in the children's first torch call.
        # Spawned workers import the caller's main module: a script calling this needs `if __name__ == "__main__"`.
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_one, jobs, chunksize=32)
    for i, (im, cl, ca) in enumerate(results):
        images.append(im)
        classes.append(cl)
        canonical.append(ca)
        if (i + 1) % 100 == 0 or i + 1 == count:
            progress((i + 1) / count, f"synthesised {i + 1}/{count} slices")
    if processes > 1 and count >= 64:
        pool.shutdown()
    return SynthBank(images, classes, canonical, int(seed))
