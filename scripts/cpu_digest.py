"""This machine's CPU fingerprint: a tiny CNN14's gradients after one seeded forward/backward, as a SHA-256, with
the runtime stamp; `--layers` prints a digest of every layer's output and every parameter's gradient instead,
to find the first kernel where two machines part (compare the two JSON files line by line).

    python scripts/cpu_digest.py
    python scripts/cpu_digest.py --layers > $(hostname).json
    MKL_CBWR=COMPATIBLE python scripts/cpu_digest.py --layers --no-onednn   # vs MKL_CBWR=AUTO: MKL's layers
    MKL_CBWR=COMPATIBLE python scripts/cpu_digest.py --ops                  # single kernels on fixed inputs

Digests differ between CPU models (ATen's instruction set, oneDNN's kernels, MKL's vendor branch): a machine
that gives a digest not in RECORDED is expected, not a bug; add it with `lscpu`'s model name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blat_core import compute, cpu_runtime  # noqa: E402

RECORDED = {  # digest -> where it was measured (2 cores, torch 2.11.0)
    "ad639fd6163af86268dce378b81106da8c37c7b092539362437422fd1a26c83c": "AMD EPYC (AVX2), native, 2026-12-07",
    # The removed BLAT_CPU_RUNTIME=portable mode (ATen AVX2, oneDNN off, MKL_CBWR=COMPATIBLE, 2 threads): the same
    # bits on both AMD machines, other bits on the Intel one, which is why it was removed.
    "5859eb02884fa123d67bf14ea4cc150cd4110717dc3519551bd59ffe2059a709": "AMD EPYC (AVX2 and AVX-512), portable "
    "(removed), 2026-12-07",
    "c1736f524b7eb977b5ebe7e676823fd1daa548acfa54acb27969bf80f7454e3d": "Intel Xeon (AVX-512), portable (removed), "
    "2026-12-03",
}


def _sha(tensor) -> str:
    return hashlib.sha256(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()


def run(layers: bool = False, onednn: bool = True) -> dict:
    """{"digest": ...} of the gradients, or with `layers` {"layers": {module output or parameter gradient: digest}}."""
    import torch

    from blat_core.models.audio.encoder import build_audio_encoder

    compute.deterministic_cpu()
    torch.backends.mkldnn.enabled = onednn  # off: convolutions through ATen's im2col + MKL's GEMM
    torch.manual_seed(0)
    model = build_audio_encoder({"name": "cnn14", "sample_rate": 16000, "channels": [4, 8, 16, 32, 64, 64],
                                 "num_classes": 5})  # fmt: skip
    outputs = {}
    if layers:
        for name, module in model.named_modules():
            if name:
                module.register_forward_hook(lambda m, _, out, name=name: outputs.update(
                    {f"output {name} ({type(m).__name__})": _sha(out)} if isinstance(out, torch.Tensor) else {}))
    wave = torch.randn(4, 16000 * 3, generator=torch.Generator().manual_seed(1)) * 0.1
    model(wave, torch.full((4,), 16000 * 3)).float().pow(2).mean().backward()
    if layers:
        return {"layers": outputs | {f"gradient {n}": _sha(p.grad) for n, p in model.named_parameters()}}
    sha = hashlib.sha256()
    for parameter in model.parameters():
        sha.update(parameter.grad.numpy().tobytes())
    return {"digest": sha.hexdigest()}


def ops() -> dict:
    """{"ops": {kernel: digest}} of single kernels on fixed inputs (oneDNN off, 2 threads): which of them follow
    MKL's code branch (run under two MKL_CBWR values) and which are ATen's own."""
    import torch

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(0)
    x, weight = torch.randn(8, 16, 40, 64, generator=generator), torch.randn(32, 16, 3, 3, generator=generator)
    a, b = torch.randn(257, 513, generator=generator), torch.randn(513, 64, generator=generator)
    wave = x.flatten()[:48000]
    spectrum = torch.stft(wave, 1024, 320, window=torch.hann_window(1024), return_complex=True).abs()
    kernels = {"matmul": a @ b, "conv2d": torch.nn.functional.conv2d(x, weight, padding=1),
               "batch_norm": torch.nn.BatchNorm2d(16).train()(x), "sum": x.sum(dim=(0, 2)), "stft": spectrum,
               "relu": torch.relu(x), "avg_pool2d": torch.nn.functional.avg_pool2d(x, 2)}  # fmt: skip
    return {"ops": {name: _sha(value)[:16] for name, value in kernels.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", action="store_true", help="a digest per layer output and parameter gradient")
    parser.add_argument("--no-onednn", action="store_true", help="convolutions without oneDNN (ATen + MKL GEMM)")
    parser.add_argument("--ops", action="store_true", help="digests of single kernels on fixed inputs")
    args = parser.parse_args()
    result = (ops() if args.ops else run(args.layers, not args.no_onednn)) | {"stamp": cpu_runtime.stamp("cpu")}
    if not args.layers and not args.ops:
        result["matches"] = RECORDED.get(result["digest"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
