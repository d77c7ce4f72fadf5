"""A synthetic LGE case in the Sample Data module, so a newcomer has something to click on.

No real data ships with ScarEnhance. The case comes from the engine's phantom generator
(scarenhance.phantom, numpy/scipy/SimpleITK only, all in Slicer), is written once into Slicer's
download cache, and from then on loads like any other sample.
"""

from __future__ import annotations

import os
from pathlib import Path

CATEGORY = "ScarEnhance"
SAMPLE_NAME = "LGE phantom (synthetic)"  # the button text in the Sample Data module
NODE_NAME = "LGE phantom"
FILE_NAME = "ScarEnhance-LGE-phantom-seed7.nrrd"
PHANTOM_SEED = 7  # a case with a clear transmural infarct (the same case as `scarenhance demo`)
THUMBNAIL = Path(__file__).resolve().parent.parent / "Resources" / "Icons" / "ScarEnhanceLGEPhantom.png"


def writePhantom(path: "str | Path", seed: int = PHANTOM_SEED) -> Path:
    """Generate the synthetic case and write its image (int16, short-axis slices) to `path`."""
    import SimpleITK as sitk

    from scarenhance.phantom import generate_case

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part.nrrd")
    sitk.WriteImage(generate_case(seed).image, str(partial), True)
    os.replace(partial, path)  # a cancelled write never leaves a truncated sample in the cache
    return path


def registerSampleData() -> None:
    """Called once Slicer has started (the module connects it to startupCompleted)."""
    import SampleData
    import slicer

    path = Path(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory()) / FILE_NAME
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=CATEGORY,
        sampleName=SAMPLE_NAME,
        uris=path.as_uri(),  # the cached file itself: SampleData reuses a file it finds in its cache
        fileNames=FILE_NAME,
        nodeNames=NODE_NAME,
        thumbnailFileName=str(THUMBNAIL),
        loadFileType="VolumeFile",
        customDownloader=loadPhantom,
    )


def loadPhantom(source):
    """The Sample Data button: make the case if it is not cached yet, then load it as usual."""
    import SampleData
    import slicer

    path = Path(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory()) / FILE_NAME
    if not path.is_file():
        with slicer.util.tryWithErrorDisplay("Could not make the synthetic LGE case.", waitCursor=True):
            writePhantom(path)
    return SampleData.SampleDataLogic().downloadFromSource(source)
