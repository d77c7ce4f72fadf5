#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/Testing/setup-venv.sh"
cd "$root"
export MPLBACKEND=Agg QT_QPA_PLATFORM=offscreen PYTHONUNBUFFERED=1
exec "$root/.venv/bin/python" -m pytest Testing "$@"
