"""A scripted stand-in for `python -m scarenhance.cli segment|enhance` (see conftest.fake_python).

Same arguments and files as the real commands (the contracts of issue 14), trivial arithmetic instead
of models, and a behaviour chosen by FAKE_ENGINE_MODE:
  ok            segment: ROI = voxels above the volume's 75th percentile, labels 1 (blood pool) where
                above the 90th, 2 (myocardium) in the rest of the ROI, a plausible report;
                enhance: ROI voxels × 1.5, safety verdict "ok"
  implausible   segment as ok, but the report says not plausible, with two warnings (exit 0)
  caution       enhance as ok, but the safety verdict is "caution" with slices 1 and 2 flagged
  bad-report    the report / safety file is not JSON
  fail          print an engine-style error and exit 2
  oom           fail with a CUDA out-of-memory error unless --device cpu
  slow          report progress every 0.1 s for a minute (for Cancel), with a worker child process
  bad-geometry  write a result on a different grid
FAKE_ENGINE_ARGS, when set, names a file that receives the command line (one JSON list per run), and
the labels given to enhance are checked (0/1/2, the input's grid) as the real engine would.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import SimpleITK as sitk

mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
if os.environ.get("FAKE_ENGINE_ARGS"):
    with open(os.environ["FAKE_ENGINE_ARGS"], "a", encoding="utf-8") as f:
        f.write(json.dumps(sys.argv[1:]) + "\n")
parser = argparse.ArgumentParser()
parser.add_argument("command")
for name in ("--input", "--output", "--roi", "--std-output", "--model", "--device", "--dilate-mm", "--lam", "--k", "--steps",
             "--seed", "--labels-output", "--report", "--labels", "--safety-output", "--agreement"):
    parser.add_argument(name)
args = parser.parse_args()


def progress(fraction, message):
    print(f"PROGRESS {fraction:.4f} {message}", file=sys.stderr, flush=True)


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        f.write("{not json" if mode == "bad-report" else json.dumps(data))


print(f"fake {args.command} on {'cpu' if args.device in (None, 'auto') else args.device}", flush=True)  # no GPU here
if mode == "fail":
    print(f"scarenhance {args.command}: error: {args.input}: image is 2D, expected a 3D volume", file=sys.stderr)
    sys.exit(2)
if mode == "oom" and args.device != "cpu":
    print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
    sys.exit(1)
if mode == "slow":
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["FAKE_ENGINE_PIDS"], "w") as f:
        f.write(f"{os.getpid()} {worker.pid}\n")
    for i in range(600):
        progress(i / 600, f"step {i}/600")
        time.sleep(0.1)

image = sitk.ReadImage(args.input)
values = sitk.GetArrayFromImage(image).astype(np.float32)
progress(0.5, "working")
if args.command == "segment":
    roi = values > np.percentile(values, 75)
    labels = np.where(roi, np.where(values > np.percentile(values, 90), 1, 2), 0).astype(np.uint8)
    for array, path in ((roi.astype(np.uint8), args.output), (labels, args.labels_output)):
        out = sitk.GetImageFromArray(array)
        out.CopyInformation(image)
        sitk.WriteImage(out, path)
    ml = float(roi.sum() * np.prod(image.GetSpacing()) / 1000)
    warnings = ["heart volume 912 ml is outside 50–600 ml", "no myocardium ring on slices 1, 2"] if mode == "implausible" else []
    write_json(args.report, {"plausible": mode != "implausible", "warnings": warnings, "volume_ml": ml})
else:
    roi = sitk.GetArrayFromImage(sitk.ReadImage(args.roi)) > 0
    if args.labels:
        labels = sitk.ReadImage(args.labels)
        assert labels.GetSize() == image.GetSize(), "labels not on the input grid"
        assert set(np.unique(sitk.GetArrayFromImage(labels)).tolist()) <= {0, 1, 2}, "labels other than 0/1/2"
    mean = np.where(roi, values * 1.5, values).astype(np.float32)
    if mode == "bad-geometry":
        mean = mean[:, :-1]
    out = sitk.GetImageFromArray(mean)
    out.SetSpacing(image.GetSpacing()), out.SetOrigin(image.GetOrigin()), out.SetDirection(image.GetDirection())
    sitk.WriteImage(out, args.output)
    if args.std_output:
        std = sitk.GetImageFromArray(np.where(roi, 1.0, 0.0).astype(np.float32))
        std.CopyInformation(image)
        sitk.WriteImage(std, args.std_output)
    caution = mode == "caution"
    write_json(args.safety_output, {
        "verdict": "caution" if caution else "ok",
        "summary": "Caution: the enhancement changed healthy myocardium on 2 of 3 slices." if caution
        else "No slice shows changes outside the expected scar range.",
        "flagged_slices": [1, 2] if caution else [], "slices": [{"index": i} for i in range(values.shape[0])]})
progress(1.0, "done")
