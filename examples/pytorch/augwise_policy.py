"""Use an augwise policy export (`augwise export SPEC > policy.json`) in a PyTorch training
script, through torchvision's own AutoAugment machinery.

    from augwise_policy import AugwisePolicy
    train_tf = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                           AugwisePolicy("policy.json"), v2.ToDtype(torch.float32, scale=True), ...])

Each sub-policy of the export is a list of (name, probability, magnitude bin) on torchvision's
10-bin AutoAugment grid; `weights` says how often to pick each (a searched AWS θ is far from
uniform). Run this file directly to check an export: `python augwise_policy.py policy.json`.
"""
import json
import sys

import torch
from torchvision.transforms import v2


class AugwisePolicy(v2.AutoAugment):
    """torchvision's AutoAugment with augwise's sub-policies and their weights."""

    def __init__(self, path, interpolation=v2.InterpolationMode.NEAREST, fill=None):
        super().__init__(interpolation=interpolation, fill=fill)
        with open(path) as f:
            doc = json.load(f)
        self.sub_policies = [tuple(tuple(op) for op in sub) for sub in doc["sub_policies"]]
        if not self.sub_policies:
            raise ValueError(f"{path}: no sub_policies (policy {doc.get('policy')}); use its `torchvision` constructor instead")
        self.weights = torch.tensor(doc.get("weights") or [1.0] * len(self.sub_policies), dtype=torch.float64)

    def forward(self, *inputs):
        # Pick one sub-policy by weight, then let AutoAugment apply it (it draws uniformly
        # from a list of one).
        i = int(torch.multinomial(self.weights, 1))
        self._policies = [self.sub_policies[i]]
        return super().forward(*inputs)


if __name__ == "__main__":
    policy = AugwisePolicy(sys.argv[1])
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = torch.stack([policy(img) for img in images])
    assert out.shape == images.shape and out.dtype == torch.uint8
    changed = (out != images).flatten(1).any(1).float().mean().item()
    print(f"ok: {len(policy.sub_policies)} sub-policies, {changed:.0%} of 64 images changed")
