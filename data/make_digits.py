#!/usr/bin/env python3
"""Regenerate data/digits.csv from scikit-learn's copy of the UCI handwritten digits.

The data is the test part of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin and Kaynak, 1998) as shipped by scikit-learn: 1797 images of 8x8 pixels, each pixel
an integer 0..16, with labels 0..9.

Output: one line per image, in scikit-learn's order, 65 comma-separated integers: the 64
pixels in row-major order, then the label. A header line names the columns.

Usage:  python3 -m pip install scikit-learn && python3 data/make_digits.py
"""

import os

from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv")
    with open(out, "w", newline="\n") as f:
        f.write(",".join([f"p{i}" for i in range(64)] + ["label"]) + "\n")
        for pixels, label in zip(digits.data, digits.target):
            row = [str(int(p)) for p in pixels] + [str(int(label))]
            f.write(",".join(row) + "\n")
    print(f"wrote {len(digits.target)} images to {out}")


if __name__ == "__main__":
    main()
