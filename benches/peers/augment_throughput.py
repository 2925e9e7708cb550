"""PyTorch peer of benches/augment_throughput.rs: torchvision v2 AutoAugment (CIFAR-10 policy)
applied per image to uint8 3x32x32 tensors, the way PyTorch users run it (a Dataset's
transform, one image at a time). Prints one JSON line with images/s."""
import argparse, json, time
import torch
from torchvision.transforms import v2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8)
    aa = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    for img in images[:64]:
        aa(img)
    t = time.perf_counter()
    for img in images:
        aa(img)
    dt = time.perf_counter() - t
    print(json.dumps({"images_per_sec": a.images / dt, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
