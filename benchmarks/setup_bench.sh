#!/usr/bin/env bash
# Creates the optional benchmark virtualenv .venv-bench (Python 3.11): PyTorch CPU-only
# (requirements/bench-torch.txt) + Opacus 1.6 (requirements/bench.txt), then tries each
# comparison library of requirements/bench-extra.txt separately and reports which
# installed. Never touches .venv; tfpriv does not depend on any of this.
#
#   bash benchmarks/setup_bench.sh                  # core bench deps + extras
#   BENCH_EXTRAS=0 bash benchmarks/setup_bench.sh   # core only
#   TORCH_INDEX=<PyTorch CPU wheel index URL> bash benchmarks/setup_bench.sh
#   BENCH_VENV=/tmp/v bash benchmarks/setup_bench.sh   # elsewhere (the zoo uses .venv-bench)
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${BENCH_VENV:-.venv-bench}   # the runner looks for .venv-bench
TORCH=2.13.0
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" || { echo "cannot create $VENV with $PY" >&2; exit 1; }
pip_install() { "$VENV/bin/python" -m pip install --quiet "$@"; }

pip_install -r requirements/bench-torch.txt || { echo "torch dependencies failed" >&2; exit 1; }
if ! pip_install --no-deps ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==$TORCH+cpu"; then
  echo "no torch==$TORCH+cpu wheel; installing PyPI torch==$TORCH without its nvidia-* packages"
  pip_install --no-deps "torch==$TORCH" || { echo "torch failed to install" >&2; exit 1; }
fi
pip_install -r requirements/bench.txt || { echo "opacus failed to install" >&2; exit 1; }
"$VENV/bin/python" -c 'import torch, opacus; print("torch", torch.__version__, "opacus", opacus.__version__)' \
  || exit 1
if [ "${BENCH_EXTRAS:-1}" = 1 ]; then
  grep -vE '^\s*(#|$)' requirements/bench-extra.txt | while read -r req; do
    if pip_install "$req" >/dev/null 2>&1; then echo "extra installed: $req"; else echo "extra FAILED:    $req"; fi
  done
fi
