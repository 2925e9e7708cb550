"""PyTorch eager peer of benches/train_throughput.rs: the same ResNet-20 (CIFAR, projection
shortcuts) or WRN-28-10 (pre-activation, no dropout), optionally under bf16 autocast and
channels-last, the same SGD (Nesterov, momentum 0.9, weight decay 1e-4 only on >=2-d tensors),
label smoothing 0.05, grad-norm clip 3.0, batch 128 of uint8 3x32x32 images normalised on the
fly. Prints one JSON line: {"images_per_sec": ..., "torch": ..., "threads": ...}.
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, s, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.sc = None
        if s != 1 or i != o:
            self.sc = nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False), nn.BatchNorm2d(o))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.sc is None else self.sc(x)))


class ResNet(nn.Module):
    def __init__(self, depth=20, in_ch=3, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, i = [], 16
        for g, o in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(i, o, 2 if g > 0 and b == 0 else 1))
                i = o
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(i, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class WideBlock(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(i)
        self.conv1 = nn.Conv2d(i, o, 3, s, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.sc = nn.Conv2d(i, o, 1, s, bias=False) if s != 1 or i != o else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (x if self.sc is None else self.sc(o))


class WideResNet(nn.Module):
    def __init__(self, depth=28, widen=10, in_ch=3, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        blocks, i = [], 16
        for g, o in enumerate([16 * widen, 32 * widen, 64 * widen]):
            for b in range(n):
                blocks.append(WideBlock(i, o, 2 if g > 0 and b == 0 else 1))
                i = o
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(i)
        self.fc = nn.Linear(i, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(arch):
    if arch == "resnet20":
        return ResNet()
    if arch.startswith("wrn-"):
        _, d, w = arch.split("-")
        return WideResNet(int(d), int(w))
    raise SystemExit(f"unknown arch {arch}")


def train_flops_per_image(model, dev):
    """Model FLOPs of one training step per image: 3x the forward's (PaLM's MFU convention),
    the forward counted by torch's FlopCounterMode (2 FLOPs per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(2, 3, 32, 32, device=dev)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return 3 * fc.get_total_flops() / 2


def sgd(model, lr):
    """docs/method.md's optimiser: Nesterov momentum 0.9, weight decay 1e-4 only on >=2-d tensors."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                           lr=lr, momentum=0.9, nesterov=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--arch", default="resnet20")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True  # as augwise sets on CUDA (device::resolve)
    model = build(a.arch).to(dev)
    flops = train_flops_per_image(model, dev)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    bf16 = a.precision == "bf16" and dev.type == "cuda"
    opt = sgd(model, 0.1)
    bs = a.batch_size
    n = bs * (a.batches + a.warmup)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (n,), device=dev)
    mean = torch.tensor([0.5, 0.5, 0.5], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.25, 0.25], device=dev).view(1, 3, 1, 1)
    perm = torch.randperm(n, device=dev)
    model.train()

    def step(b):
        idx = perm[b * bs:(b + 1) * bs]
        x = ((images.index_select(0, idx).float() / 255.0 - mean) / std).contiguous(memory_format=fmt)
        y = labels.index_select(0, idx)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=0.05)
        value = loss.item()  # the NaN check the Rust trainer also does every batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        return value

    for b in range(a.warmup):
        step(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for b in range(a.warmup, a.warmup + a.batches):
        step(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print(json.dumps({"images_per_sec": a.batches * bs / dt, "seconds": dt, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "train_flops_per_image": flops}))


if __name__ == "__main__":
    main()
