"""PyTorch peer of benches/trajectory_throughput.rs, in the style of the official AWS code:
a Dataset of PIL images whose transform draws an AWS pair per image and applies it with PIL
ops (RandomCrop(32, 4) -> flip -> op1 -> op2 -> Cutout 16 -> ToTensor -> Normalize), fed by a
DataLoader with worker processes, into the same ResNet-20 and SGD step. Prints one JSON line."""
import argparse, json, math, random, sys, time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from train_throughput import ResNet, sgd  # noqa: E402

T = 150.0 / 331.0
OPS = ([("AutoContrast", 0.0)] + [("Brightness", m) for m in (0.3, 0.6, 0.9)] + [("Color", m) for m in (0.3, 0.6, 0.9)]
       + [("Contrast", m) for m in (0.3, 0.6, 0.9)] + [("Equalize", 0.0), ("Invert", 0.0)]
       + [("Posterize", b) for b in (7, 5, 4)] + [("Rotate", d) for d in (10.0, 20.0, 30.0)]
       + [("Sharpness", m) for m in (0.3, 0.6, 0.9)] + [("ShearX", s) for s in (0.1, 0.2, 0.3)]
       + [("ShearY", s) for s in (0.1, 0.2, 0.3)] + [("Solarize", t / 255.0) for t in (170.67, 85.33, 0.0)]
       + [("TranslateX", T * l / 3) for l in (1, 2, 3)] + [("TranslateY", T * l / 3) for l in (1, 2, 3)])
SIGNED = {"Brightness", "Color", "Contrast", "Sharpness", "Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}
AA = v2.AutoAugment()


def apply(img, name, m):
    if name in SIGNED and random.random() < 0.5:
        m = -m
    if name.startswith("Translate"):
        m = m * 32
    return AA._apply_image_or_video_transform(img, name, m, interpolation=v2.InterpolationMode.NEAREST, fill={})


class Cutout:
    def __call__(self, x):
        h, w = x.shape[-2:]
        y, xx = random.randrange(h), random.randrange(w)
        x = x.clone()
        x[:, max(0, y - 8):min(h, y + 8), max(0, xx - 8):min(w, xx + 8)] = 0
        return x


class AwsData(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.pre = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
        self.post = v2.Compose([v2.PILToTensor(), Cutout(), v2.ToDtype(torch.float32, scale=True),
                                v2.Normalize([0.5] * 3, [0.25] * 3)])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.pre(v2.functional.to_pil_image(self.images[i]))
        k = random.randrange(36 * 36)
        img = apply(apply(img, *OPS[k // 36]), *OPS[k % 36])
        return self.post(img), self.labels[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bs, n = 128, 128 * (a.batches + 3)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))
    loader = DataLoader(AwsData(images, labels), batch_size=bs, shuffle=True, num_workers=a.workers,
                        drop_last=True, persistent_workers=a.workers > 0)
    dev = torch.device(a.device)
    model = ResNet().to(dev)
    opt = sgd(model, 0.001)
    model.train()
    t, seen = None, 0
    for b, (x, y) in enumerate(loader):
        if b == 3:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        if b >= 3:
            seen += len(y)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print(json.dumps({"images_per_sec": seen / dt, "torch": torch.__version__, "workers": a.workers}))


if __name__ == "__main__":
    main()
