#!/usr/bin/env bash
# The main job, end to end: synthetic LGE case → heart segmentation → scar enhancement → volumes + PNG figure.
# Sets up .venv if needed. Output goes to ./output/demo (or the folder given as the first argument).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/Testing/setup-venv.sh"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec "$root/.venv/bin/scarenhance" demo --out "${1:-$root/output/demo}" "${@:2}"
