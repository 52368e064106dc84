"""Record the key -> (shape, dtype) list of the authors' BLAT bi-encoder, built by *their* code, as a fixture.

    python scripts/record_authors_blat_keys.py --repo /path/to/wsntxxn/BLAT --deps /path/to/site \
        --out tests/fixtures/authors_blat_state_dict.json [--commit SHA]

`--repo`: a checkout of github.com/wsntxxn/BLAT (nothing of it is copied here: its classes are imported from
there and only the names and shapes of `state_dict()` are written). Its config
(`checkpoints/blat_cnn14_bertm/config.json`) builds `AudioTextClip(Cnn14(sample_rate=32000),
Bert("prajjwal1/bert-medium"), 2048, 512, 1024)`; the BERT is made here as a random BERT-medium
(8 layers, hidden 512, 8 heads, FFN 2048, vocabulary 30522) in a temporary folder, because the hub is
unreachable. `--deps`: a folder holding `einops` and `torchlibrosa` (pip install --no-deps --target); their
imports of `timm`, `wget` and torchlibrosa's `librosa` are unused when the model is built and are stubbed.
The JSON also says which transformers version built the text tower (files saved with < 4.31 also hold
`embeddings.position_ids`; the test writes that variant too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path


def _stub(name: str, **attributes) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--deps", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--commit", default="", help="the checkout's commit, when --repo is not a git work tree")
    args = parser.parse_args()
    import torch
    import transformers

    for name in ("timm", "timm.models", "wget", "librosa"):
        _stub(name)
    _stub("timm.models.layers", to_2tuple=lambda x: (x, x), trunc_normal_=lambda *a, **k: None)
    sys.path[:0] = [str(args.repo), str(args.deps)]
    from models.audio_encoder import Cnn14  # the authors' classes, from their checkout
    from models.audio_text_model import AudioTextClip
    from models.text_encoder import Bert

    config = json.loads((args.repo / "checkpoints" / "blat_cnn14_bertm" / "config.json").read_text())["model"]
    with tempfile.TemporaryDirectory() as bert:
        medium = transformers.BertConfig(vocab_size=30522, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                                         intermediate_size=2048, max_position_embeddings=512)  # fmt: skip
        transformers.BertModel(medium).save_pretrained(bert)
        model = AudioTextClip(Cnn14(**config["audio_encoder"]["args"]), Bert(bert), **config["args"])
    state = model.state_dict()
    commit = args.commit or subprocess.run(["git", "-C", str(args.repo), "rev-parse", "HEAD"], capture_output=True,
                                           text=True).stdout  # fmt: skip
    record = {
        "source": f"github.com/wsntxxn/BLAT {commit.strip() or '(commit unknown)'}: AudioTextClip(Cnn14(32000), "
        "Bert(BERT-medium), audio_dim 2048, text_dim 512, shared_dim 1024).state_dict()",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "keys": {key: [list(value.shape), str(value.dtype).removeprefix("torch.")] for key, value in state.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{len(state)} keys -> {args.out}")


if __name__ == "__main__":
    main()
