"""A scripted stand-in for `python -m scarenhance.cli segment|enhance` (see conftest.fake_python).

Same arguments and files as the real commands, trivial arithmetic instead of models, and a
behaviour chosen by FAKE_ENGINE_MODE:
  ok            segment: mask = voxels above the volume's 75th percentile; enhance: ROI voxels × 1.5
  fail          print an engine-style error and exit 2
  oom           fail with a CUDA out-of-memory error unless --device cpu
  slow          report progress every 0.1 s for a minute (for Cancel), with a worker child process
  bad-geometry  write a result on a different grid
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import SimpleITK as sitk

mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
parser = argparse.ArgumentParser()
parser.add_argument("command")
for name in ("--input", "--output", "--roi", "--std-output", "--model", "--device", "--dilate-mm", "--lam", "--k", "--steps", "--seed"):
    parser.add_argument(name)
args = parser.parse_args()


def progress(fraction, message):
    print(f"PROGRESS {fraction:.4f} {message}", file=sys.stderr, flush=True)


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
    out = sitk.GetImageFromArray((values > np.percentile(values, 75)).astype(np.uint8))
    out.CopyInformation(image)
    sitk.WriteImage(out, args.output)
else:
    roi = sitk.GetArrayFromImage(sitk.ReadImage(args.roi)) > 0
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
progress(1.0, "done")
