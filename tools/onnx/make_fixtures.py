#!/usr/bin/env python3
"""Write the ONNX fixtures of Veil's importer tests (crates/veil-nn/tests/fixtures/onnx/).

Every model is exported by a real exporter (torch.onnx.export, opset 13) and every reference
output is computed by onnxruntime, so the Rust tests check Veil's import against both:

- digits_mlp.onnx: the float network of models/digits.json (Linear 64->24, ReLU, Linear 24->10),
  its weights copied from the JSON; input [N, 64].
- digits_mlp2.onnx: a 64-32-16-10 MLP trained here on Veil's digits training split.
- digits_softmax.onnx: the network of digits_mlp.onnx written another way, to exercise the
  other import paths: input [N, 1, 8, 8], a Reshape to [-1, 64], MatMul + Add, ReLU, Gemm, and a
  final Softmax (its reference outputs are the probabilities).
- fashion_cnn.onnx: a copy of models/fashion/fashion_cnn.onnx (run models/fashion/train.py first).
- unsupported.onnx: a small network with a Sigmoid, outside the supported set.

and <name>.reference.json for each supported one: a list of {"input": [...], "output": [...]}
for 10 inputs: the first 10 digits test rows (row i of data/digits.csv with i % 5 == 4),
pixel/16, or the first 10 Fashion-MNIST test images, pixel/255 (C, H, W order).

Deterministic: fixed seeds, one thread. Usage (pinned versions in tools/onnx/requirements.txt):

    python tools/onnx/make_fixtures.py
"""

import gzip
import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "veil-nn", "tests", "fixtures", "onnx")
FASHION = ["/usr/share/datasets/fashion-mnist", os.path.join(ROOT, "data", "fashion-mnist")]
SEED = 7


def digits():
    """(train x, train y, test x, test y) of Veil's split, x = pixel/16."""
    rows = np.loadtxt(os.path.join(ROOT, "data", "digits.csv"), delimiter=",", skiprows=1, dtype=np.int64)
    x = rows[:, :64].astype(np.float32) / 16.0
    y = rows[:, 64]
    test = np.arange(len(rows)) % 5 == 4
    return x[~test], y[~test], x[test], y[test]


def fashion_test_images(n):
    for d in FASHION:
        p = os.path.join(d, "t10k-images-idx3-ubyte.gz")
        if os.path.exists(p):
            with gzip.open(p, "rb") as f:
                raw = f.read()
            return (np.frombuffer(raw, dtype=np.uint8, offset=16)[: n * 784].astype(np.float32) / 255.0).reshape(n, 1, 28, 28)
    raise FileNotFoundError("t10k-images-idx3-ubyte.gz not found in " + ", ".join(FASHION))


def export(model, example, name, input_name="input"):
    path = os.path.join(OUT, name + ".onnx")
    model.eval()
    torch.onnx.export(
        model, torch.from_numpy(example), path, opset_version=13,
        input_names=[input_name], output_names=["output"],
        dynamic_axes={input_name: {0: "N"}, "output": {0: "N"}}, do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(path))
    return path


def reference(path, inputs):
    """onnxruntime's outputs on each input (one at a time), written next to the model."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    cases = []
    for x in inputs:
        y = sess.run(None, {name: x[None].astype(np.float32)})[0][0]
        cases.append({
            "input": [float(v) for v in x.reshape(-1)],
            "output": [float(v) for v in np.asarray(y, dtype=np.float32).reshape(-1)],
        })
    with open(path[: -len(".onnx")] + ".reference.json", "w") as f:
        json.dump(cases, f)
        f.write("\n")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes, ops {ops}")


def digits_float():
    """The float layers of models/digits.json as a torch MLP."""
    with open(os.path.join(ROOT, "models", "digits.json")) as f:
        layers = json.load(f)["float"]["layers"]
    mods = []
    for k, layer in enumerate(layers):
        lin = nn.Linear(layer["inputs"], layer["outputs"])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(layer["weights"], dtype=torch.float32).reshape(layer["outputs"], layer["inputs"]))
            lin.bias.copy_(torch.tensor(layer["bias"], dtype=torch.float32))
        mods.append(lin)
        if k + 1 < len(layers):
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class MatMulVariant(nn.Module):
    """digits_float() written with a Reshape, an explicit MatMul + Add, and a Softmax."""

    def __init__(self, mlp):
        super().__init__()
        first, last = mlp[0], mlp[2]
        self.w = nn.Parameter(first.weight.detach().t().contiguous())
        self.b = nn.Parameter(first.bias.detach().clone())
        self.out = last

    def forward(self, x):
        h = torch.relu(torch.matmul(x.reshape(-1, 64), self.w) + self.b)
        return torch.softmax(self.out(h), dim=1)


def train_mlp2(xtr, ytr):
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(60):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 32):
            idx = perm[i: i + 32]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    os.makedirs(OUT, exist_ok=True)
    xtr, ytr, xte, yte = digits()
    tests = xte[:10]

    mlp = digits_float()
    reference(export(mlp, tests[:1], "digits_mlp"), tests)

    mlp2 = train_mlp2(xtr, ytr)
    with torch.no_grad():
        acc = (mlp2(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print(f"digits_mlp2: test accuracy {100 * acc:.2f}% on {len(yte)} images")
    reference(export(mlp2, tests[:1], "digits_mlp2"), tests)

    images = tests.reshape(-1, 1, 8, 8)
    reference(export(MatMulVariant(mlp), images[:1], "digits_softmax"), images)

    src = os.path.join(ROOT, "models", "fashion", "fashion_cnn.onnx")
    dst = os.path.join(OUT, "fashion_cnn.onnx")
    shutil.copyfile(src, dst)
    reference(dst, fashion_test_images(10))

    torch.manual_seed(SEED)
    bad = nn.Sequential(nn.Linear(64, 8), nn.Sigmoid(), nn.Linear(8, 10))
    path = export(bad, tests[:1], "unsupported")
    print(f"{os.path.relpath(path, ROOT)}: ops {[n.op_type for n in onnx.load(path).graph.node]}")


if __name__ == "__main__":
    main()
