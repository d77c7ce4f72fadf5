"""ScarEnhance engine: myocardial scar enhancement in LGE cardiac MRI (Hasny et al., MICCAI 2024).

Never imports Slicer, Qt or VTK; the Slicer modules call this package, never the other way round.
"""

__version__ = "0.1.0"
