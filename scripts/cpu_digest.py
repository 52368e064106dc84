"""The CPU runtime's fingerprint on this machine: a tiny CNN14's gradients after one seeded forward/backward,
as a SHA-256, with the runtime stamp. Under BLAT_CPU_RUNTIME=portable the digest should be the same on every
x86-64 CPU with AVX2; compare it with the one docs/install.md records (and the machine it came from).

    BLAT_CPU_RUNTIME=portable python scripts/cpu_digest.py
    python scripts/cpu_digest.py            # native: expect a digest that depends on the CPU
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import blat_core  # noqa: E402, F401  (fixes the CPU kernels before torch computes)
from blat_core import compute, cpu_runtime  # noqa: E402

RECORDED = {  # portable digest -> where it was measured
    "c1736f524b7eb977b5ebe7e676823fd1daa548acfa54acb27969bf80f7454e3d": "Intel Xeon (AVX-512), 2 cores, 2026-12-03",
}


def digest() -> str:
    import torch

    from blat_core.models.audio.encoder import build_audio_encoder

    compute.deterministic_cpu()
    torch.manual_seed(0)
    model = build_audio_encoder({"name": "cnn14", "sample_rate": 16000, "channels": [4, 8, 16, 32, 64, 64],
                                 "num_classes": 5})  # fmt: skip
    wave = torch.randn(4, 16000 * 3, generator=torch.Generator().manual_seed(1)) * 0.1
    model(wave, torch.full((4,), 16000 * 3)).float().pow(2).mean().backward()
    sha = hashlib.sha256()
    for parameter in model.parameters():
        sha.update(parameter.grad.numpy().tobytes())
    return sha.hexdigest()


def main() -> None:
    value = digest()
    stamp = cpu_runtime.stamp("cpu")
    known = RECORDED.get(value)
    print(json.dumps({"digest": value, "stamp": stamp, "matches": known}, indent=2))
    if stamp["runtime"] == "portable" and known is None:
        print("this portable digest differs from every recorded one: please report it with `lscpu` output",
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
