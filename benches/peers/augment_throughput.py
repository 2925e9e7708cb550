"""PyTorch peer of benches/augment_throughput.rs: torchvision v2 AutoAugment (CIFAR-10 policy)
on uint8 3x32x32 tensors, on --device, two ways:
- per image, the way PyTorch users run it (a Dataset's transform, one image at a time);
- batched: one call on a batch of 256, which in torchvision v2 draws ONE sub-policy for the
  whole batch (fast, but not per-image augmentation: a different method, shown for scale).
Prints one JSON line with images/s for both."""
import argparse, json, time
import torch
from torchvision.transforms import v2


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    images = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8, device=dev)
    aa = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    for img in images[:64]:
        aa(img)
    sync(dev)
    t = time.perf_counter()
    for img in images:
        aa(img)
    sync(dev)
    per_image = a.images / (time.perf_counter() - t)
    batches = images.split(256)
    for b in batches[:2]:
        aa(b)
    sync(dev)
    t = time.perf_counter()
    for _ in range(3):
        for b in batches:
            aa(b)
    sync(dev)
    batched = 3 * a.images / (time.perf_counter() - t)
    print(json.dumps({"images_per_sec": per_image, "batched_images_per_sec": batched, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
