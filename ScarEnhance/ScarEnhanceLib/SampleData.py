"""A synthetic LGE case in the Sample Data module, so a newcomer has something to click on.

No real data ships with ScarEnhance. The case comes from the engine's phantom generator
(scarenhance.phantom, numpy/scipy/SimpleITK only, all in Slicer), is written into Slicer's download
cache when the sample is registered (so the button and a scripted `SampleData.downloadSample` both
find it), and from then on loads like any other sample.
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


def cachedPhantom(cacheDir: "str | Path") -> Path:
    """The case in Slicer's download cache, written there first if it is not (about half a second, once).

    Sample Data's scripted path (`SampleData.downloadSample(NODE_NAME)`) skips the custom downloader
    and fetches the `file://` URI itself: that file must exist before anyone asks for it."""
    path = Path(cacheDir) / FILE_NAME
    if not path.is_file() or path.stat().st_size == 0:
        writePhantom(path)
    return path


def registerSampleData() -> None:
    """Called once Slicer has started (the module connects it to startupCompleted)."""
    import logging

    import SampleData
    import slicer

    cache = Path(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory())
    path = cache / FILE_NAME
    try:
        cachedPhantom(cache)
    except Exception:  # a read-only cache: the button still offers to make it (loadPhantom)
        logging.exception("ScarEnhance: could not write the synthetic LGE case to %s", path)
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
    """The Sample Data button: make the case if it is not cached (any more), then load it as usual."""
    import SampleData
    import slicer

    from .ErrorDisplay import guarded

    cache = slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory()
    ok, _path = guarded(lambda: cachedPhantom(cache), "Could not make the synthetic LGE case.", slicer.util.errorDisplay)
    if not ok:
        return []
    return SampleData.SampleDataLogic().downloadFromSource(source)
