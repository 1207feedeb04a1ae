#!/usr/bin/env bash
# Reproduces the bundled Fashion-MNIST models, models/fashion_cnn.json and
# models/fashion_mlp.json, in one command: trains both float networks in PyTorch (the versions
# pinned in tools/onnx/requirements.txt, installed into a virtual environment outside the
# repository), exports them to ONNX, and imports them with `veil import`, calibrated on the
# first 6000 training images. Needs the training split: the Debian package
# dataset-fashion-mnist, or the IDX files in the directory named by VEIL_FASHION_MNIST.
#
#   models/fashion/make.sh            # PYTHON=/path/to/python to use an existing environment
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${PYTHON:-}" ]; then
    venv="${VEIL_VENV:-${TMPDIR:-/tmp}/veil-fashion-venv}"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q -r tools/onnx/requirements.txt
    fi
    PYTHON="$venv/bin/python"
fi

"$PYTHON" models/fashion/train.py
cargo build --bin veil
veil=target/debug/veil
"$veil" import models/fashion/fashion_cnn.onnx --calibration fashion-mnist \
    --calibration-images 6000 --input-bits 4 --weight-bits 6 --activation-bits 4 \
    --name fashion-cnn --out models/fashion_cnn.json
"$veil" import models/fashion/fashion_mlp.onnx --calibration fashion-mnist \
    --calibration-images 6000 --input-bits 4 --weight-bits 4 --activation-bits 3 \
    --name fashion-mlp --out models/fashion_mlp.json
