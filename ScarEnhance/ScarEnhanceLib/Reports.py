"""The engine's JSON reports, read and checked, and the lines the panel shows for them.

    scarenhance segment --report REPORT.json        {"plausible": bool, "warnings": [str], "volume_ml": float, …}
    scarenhance enhance --safety-output SAFETY.json {"verdict": "ok" | "caution", "summary": str,
                                                     "flagged_slices": [int], "slices": […]}

A report that is missing or malformed is an error naming the file (the run's results are not
imported): the verdict is never silently dropped. Slice numbers are shown as the engine writes them.
No Slicer, no Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

VERDICTS = ("ok", "caution")


@dataclass(frozen=True)
class SegmentReport:
    plausible: bool
    warnings: tuple  # of str
    volumeMl: float


@dataclass(frozen=True)
class SafetyReport:
    verdict: str  # "ok" | "caution"
    summary: str  # one line for the panel
    flaggedSlices: tuple  # of int


def _load(path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: the engine wrote no report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON report ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the report is not a JSON object")
    return data


def _field(data: dict, path, key: str, kind, what: str):
    value = data.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{path}: {key!r} must be {what}, got {value!r}")
    return value


def readSegmentReport(path) -> SegmentReport:
    data = _load(path)
    plausible = _field(data, path, "plausible", bool, "true or false")
    warnings = _field(data, path, "warnings", list, "a list of strings")
    if not all(isinstance(w, str) for w in warnings):
        raise ValueError(f"{path}: 'warnings' must be a list of strings, got {warnings!r}")
    volume = _field(data, path, "volume_ml", (int, float), "a number")
    return SegmentReport(plausible, tuple(warnings), float(volume))


def readSafetyReport(path) -> SafetyReport:
    data = _load(path)
    verdict = _field(data, path, "verdict", str, " or ".join(map(repr, VERDICTS)))
    if verdict not in VERDICTS:
        raise ValueError(f"{path}: 'verdict' must be {' or '.join(map(repr, VERDICTS))}, got {verdict!r}")
    summary = _field(data, path, "summary", str, "a line of text").strip()
    flagged = _field(data, path, "flagged_slices", list, "a list of slice numbers")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in flagged):
        raise ValueError(f"{path}: 'flagged_slices' must be a list of slice numbers, got {flagged!r}")
    return SafetyReport(verdict, summary, tuple(flagged))


def segmentNote(report: SegmentReport) -> str:
    """The warning note for an implausible segmentation ('' when it is plausible)."""
    if report.plausible:
        return ""
    listed = "; ".join(report.warnings) or "no reason given"
    return f"Check this segmentation before using it: the engine finds it implausible ({listed})."


def safetyNote(report: SafetyReport) -> str:
    """The verdict line: the engine's one-line summary, and the slices it advises against trusting."""
    text = report.summary or ("No problem found." if report.verdict == "ok" else "Use with caution.")
    if report.flaggedSlices:
        text += " Advise against trusting slice" + ("s " if len(report.flaggedSlices) > 1 else " ") \
            + ", ".join(map(str, report.flaggedSlices)) + "."
    return text
