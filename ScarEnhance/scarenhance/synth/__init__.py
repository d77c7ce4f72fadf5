"""The randomized data engine for training (SynthSeg's approach: shape, not appearance).

    from scarenhance.synth import SynthRanges, synth_slice
    s = synth_slice(seed=3)        # image, heart classes, canonical labels, structure map, info

anatomy.py draws the label map, appearance.py its random contrast, acquisition.py the scanner's and the
registration's effects; sample.py chains them. The phantom generator (scarenhance.phantom) stays the
demo and test data; this engine only feeds training.
"""

from .sample import SynthRanges, SynthSlice, synth_slice

__all__ = ["SynthRanges", "SynthSlice", "synth_slice"]
