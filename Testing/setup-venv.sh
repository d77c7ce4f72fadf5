#!/usr/bin/env bash
# Creates (or refreshes) .venv with the engine and what the tests need. Idempotent: a second run only checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.installed"
want="$(cat "$root/pyproject.toml" "$root/Testing/setup-venv.sh" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip >/dev/null
# A CPU machine gets the CPU build of torch; with an NVIDIA driver, the default (CUDA) wheel.
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    pip install "torch==2.13.0"
  else
    pip install --timeout 10 --retries 1 "torch==2.13.0" --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" \
      || pip install "torch==2.13.0"
  fi
fi
pip install -e "$root[test]"
echo "$want" > "$stamp"
