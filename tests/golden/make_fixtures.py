"""Writes tests/golden/torchvision_ops.json: inputs, (op, magnitude, interpolation, fill) and
torchvision v2's outputs, which tests/golden.rs compares augwise's batched ops against.

Regenerate (pinned torchvision from the project venv, set up by scripts/setup.sh):

    .venv/bin/python tests/golden/make_fixtures.py

Magnitudes are in augwise's units (src/augment/ops.rs); this script converts them to the
arguments torchvision's AutoAugment passes to its functional ops (`_apply_image_or_video_transform`).
"""
import json
import math
import pathlib

import torch
import torchvision
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2 import InterpolationMode

H, W = 10, 12  # not square, so x/y mix-ups show


def inputs():
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (3, 3, H, W), generator=g, dtype=torch.uint8)
    # Image 1: a smooth gradient; image 2: a narrow range with one constant channel (the
    # AutoContrast and Equalize edge cases).
    ramp = (torch.arange(H * W, dtype=torch.float32).view(H, W) * 255 / (H * W - 1)).to(torch.uint8)
    rgb[1] = torch.stack([ramp, ramp.flip(1), ramp.t().reshape(H, W)])
    rgb[2, 0] = 77
    rgb[2, 1:] = torch.randint(100, 111, (2, H, W), generator=g, dtype=torch.uint8)
    grey = torch.randint(0, 256, (2, 1, H, W), generator=g, dtype=torch.uint8)
    grey[1, 0] = torch.randint(30, 60, (H, W), generator=g, dtype=torch.uint8)
    return {"rgb": rgb, "grey": grey}


def tv_apply(img, op, m, interpolation, fill):
    """What torchvision's AutoAugment does for (op, magnitude), in augwise's units."""
    mode = InterpolationMode(interpolation)
    h, w = img.shape[-2:]
    if op == "Identity":
        return img
    if op == "ShearX":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[math.degrees(math.atan(m)), 0.0],
                        interpolation=mode, fill=fill, center=[0, 0])
    if op == "ShearY":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, math.degrees(math.atan(m))],
                        interpolation=mode, fill=fill, center=[0, 0])
    if op == "TranslateX":
        return F.affine(img, angle=0.0, translate=[int(m * w), 0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=mode, fill=fill)
    if op == "TranslateY":
        return F.affine(img, angle=0.0, translate=[0, int(m * h)], scale=1.0, shear=[0.0, 0.0],
                        interpolation=mode, fill=fill)
    if op == "Rotate":
        return F.rotate(img, angle=m, interpolation=mode, fill=fill)
    if op == "Brightness":
        return F.adjust_brightness(img, 1.0 + m)
    if op == "Color":
        return F.adjust_saturation(img, 1.0 + m)
    if op == "Contrast":
        return F.adjust_contrast(img, 1.0 + m)
    if op == "Sharpness":
        return F.adjust_sharpness(img, 1.0 + m)
    if op == "Posterize":
        return F.posterize(img, int(m))
    if op == "Solarize":
        return F.solarize(img, threshold=m)
    if op == "AutoContrast":
        return F.autocontrast(img)
    if op == "Equalize":
        return F.equalize(img)
    if op == "Invert":
        return F.invert(img)
    raise ValueError(op)


GEOMETRIC = {
    "ShearX": [-0.3, 0.1, 0.3],
    "ShearY": [-0.3, 0.1, 0.3],
    "TranslateX": [-0.453, 0.151, 0.302],
    "TranslateY": [-0.453, 0.151, 0.302],
    "Rotate": [-30.0, 10.0, 20.0, 90.0],
}
COLOUR = {
    "Brightness": [-0.9, -0.3, 0.6, 0.9],
    "Color": [-0.9, -0.3, 0.6, 0.9],
    "Contrast": [-0.9, -0.3, 0.6, 0.9],
    "Sharpness": [-0.9, -0.3, 0.6, 0.9],
    "Posterize": [0.0, 1.0, 4.0, 7.0, 8.0],
    "Solarize": [0.0, 85.3333, 128.0, 170.6667, 255.0],
    "AutoContrast": [0.0],
    "Equalize": [0.0],
    "Invert": [0.0],
    "Identity": [0.0],
}


def main():
    ins = inputs()
    cases = []
    for name, x in ins.items():
        for op, mags in GEOMETRIC.items():
            for m in mags:
                for interpolation in ["nearest", "bilinear"]:
                    for fill in [None, [128.0]]:
                        y = torch.stack([tv_apply(img, op, m, interpolation, fill) for img in x])
                        cases.append({"input": name, "op": op, "magnitude": m, "interpolation": interpolation,
                                      "fill": fill, "hex": y.numpy().tobytes().hex()})
        for op, mags in COLOUR.items():
            for m in mags:
                y = torch.stack([tv_apply(img, op, m, "nearest", None) for img in x])
                cases.append({"input": name, "op": op, "magnitude": m, "interpolation": "nearest",
                              "fill": None, "hex": y.numpy().tobytes().hex()})
    # The magnitude grids torchvision's policies draw from, as the floats it passes to its ops.
    from torchvision.transforms import v2
    grids = []
    for grid, cls, bins in [("standard", v2.AutoAugment, 10), ("standard", v2.RandAugment, 31), ("wide", v2.TrivialAugmentWide, 31)]:
        for op, (fn, signed) in cls._AUGMENTATION_SPACE.items():
            mags = fn(bins, 28, 32)
            if mags is None:
                continue
            values = [float(m) for m in mags]
            if op == "Solarize":
                values = [255.0 * v for v in values]  # v2 multiplies by the uint8 maximum
            grids.append({"grid": grid, "bins": bins, "h": 28, "w": 32, "op": op, "values": values})
    out = {
        "grids": grids,
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        "inputs": {k: {"shape": list(v.shape), "hex": v.numpy().tobytes().hex()} for k, v in ins.items()},
        "cases": cases,
    }
    path = pathlib.Path(__file__).with_name("torchvision_ops.json")
    path.write_text(json.dumps(out, indent=0) + "\n")
    print(f"{len(cases)} cases -> {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
