#!/usr/bin/env bash
# One-command set-up plus the main job or the tests, on a fresh machine (Python 3.10+ and pip only).
#   bash scripts/quickstart.sh demo   # install, then run seganypet_demo on built-in synthetic data
#   bash scripts/quickstart.sh test   # install (with the napari extra), lint (ruff check, ruff format --check), then
#                                     # run the test suite
# CPU machines: torch is pinned to the CPU build (pip's find-links) so pip never pulls a CUDA torch.
# GPU machines: an already installed torch (e.g. a CUDA build) is kept and pinned as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CPU_TORCH=${SEGANYPET_TORCH_VERSION:-2.13.0}

install() {
    local extras=$1 have constraints
    have=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || true)
    if [ -z "$have" ]; then
        echo "[quickstart] installing torch==$CPU_TORCH (CPU build from pip's find-links)"
        "$PY" -m pip install -q "torch==$CPU_TORCH"
        have=$CPU_TORCH
    else
        echo "[quickstart] keeping the installed torch $have"
    fi
    constraints=$(mktemp)
    echo "torch==$have" >"$constraints"
    "$PY" -m pip install -q -c "$constraints" -e ".[$extras]"
    rm -f "$constraints"
}

case "${1:-}" in
    demo)
        install test
        shift
        exec seganypet_demo "$@"
        ;;
    test)
        install test,napari  # the napari plugin's tests run headless (Qt offscreen); they skip without the extra
        shift
        echo "[quickstart] lint: ruff check . && ruff format --check ."
        "$PY" -m ruff check .
        "$PY" -m ruff format --check .
        set +e
        "$PY" -m pytest -q -ra "$@"
        rc=$?
        set -e
        # pytest exits 5 when it collected no test: report it, do not fail the run on it.
        if [ "$rc" -eq 5 ]; then echo "[quickstart] pytest collected no tests"; exit 0; fi
        exit "$rc"
        ;;
    *)
        echo "usage: bash scripts/quickstart.sh demo|test [extra args]" >&2
        exit 2
        ;;
esac
