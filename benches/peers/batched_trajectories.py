"""Does batching k trajectories into one model pay on this device? (issue 13, item 3)

k ResNet-20 trajectories trained one after another (k models, k optimiser steps per round)
against the same k stacked into ONE model: every conv a grouped conv (groups=k; member j owns
channels j*C..(j+1)*C), BN over k*C channels (so per-member statistics), the classifier a
batched matmul, loss = sum of the members' losses (so each member's gradient is its own).
Each member keeps its own weights, BN statistics, momentum, data and labels. Prints one JSON
line: images/s (all members' images) for both, and the ratio."""
import argparse, json, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from train_throughput import ResNet, sgd  # noqa: E402


class GBlock(nn.Module):
    def __init__(self, k, i, o, s):
        super().__init__()
        self.conv1 = nn.Conv2d(k * i, k * o, 3, s, 1, bias=False, groups=k)
        self.bn1 = nn.BatchNorm2d(k * o)
        self.conv2 = nn.Conv2d(k * o, k * o, 3, 1, 1, bias=False, groups=k)
        self.bn2 = nn.BatchNorm2d(k * o)
        self.sc = None
        if s != 1 or i != o:
            self.sc = nn.Sequential(nn.Conv2d(k * i, k * o, 1, s, bias=False, groups=k), nn.BatchNorm2d(k * o))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.sc is None else self.sc(x)))


class GroupedResNet20(nn.Module):
    def __init__(self, k, classes=10):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv2d(3 * k, 16 * k, 3, 1, 1, bias=False, groups=k)
        self.bn1 = nn.BatchNorm2d(16 * k)
        blocks, i = [], 16
        for g, o in enumerate([16, 32, 64]):
            for b in range(3):
                blocks.append(GBlock(k, i, o, 2 if g > 0 and b == 0 else 1))
                i = o
        self.blocks = nn.Sequential(*blocks)
        self.fc_w = nn.Parameter(torch.randn(k, 64, classes) * 0.05)
        self.fc_b = nn.Parameter(torch.zeros(k, classes))

    def forward(self, x):  # x: [B, k*3, H, W] -> logits [k, B, classes]
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        f = F.adaptive_avg_pool2d(x, 1).flatten(1).view(x.shape[0], self.k, 64).transpose(0, 1)
        return torch.baddbmm(self.fc_b.unsqueeze(1), f, self.fc_w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    k, bs = a.k, a.batch_size
    x = torch.randn(k, bs, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (k, bs), device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    models = [ResNet().to(dev) for _ in range(k)]
    opts = [sgd(m, 0.1) for m in models]

    def sequential_round():
        for j in range(k):
            loss = F.cross_entropy(models[j](x[j]), y[j], label_smoothing=0.05)
            opts[j].zero_grad(set_to_none=True)
            loss.backward()
            opts[j].step()

    g = GroupedResNet20(k).to(dev)
    gopt = sgd(g, 0.1)
    xs = x.transpose(0, 1).reshape(bs, k * 3, 32, 32).contiguous()

    def grouped_round():
        logits = g(xs)
        loss = F.cross_entropy(logits.reshape(k * bs, 10), y.reshape(k * bs), label_smoothing=0.05, reduction="sum") / bs
        gopt.zero_grad(set_to_none=True)
        loss.backward()
        gopt.step()

    def rate(fn):
        for _ in range(3):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(a.batches):
            fn()
        sync()
        return a.batches * k * bs / (time.perf_counter() - t)

    seq = rate(sequential_round)
    grp = rate(grouped_round)
    print(json.dumps({"k": k, "sequential_images_per_sec": seq, "grouped_images_per_sec": grp, "ratio": grp / seq,
                      "torch": torch.__version__, "device": str(dev)}))


if __name__ == "__main__":
    main()
