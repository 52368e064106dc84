"""A tiny bi-encoder for tests: a narrow CNN14 and a 2-layer random BERT that uses the real
all-MiniLM-L6-v2 tokenizer files (so tokenisation is the production path)."""

from __future__ import annotations

import shutil
from pathlib import Path

from blat_core.models.blat_model import build_biencoder
from blat_core.models.text.encoder import resolve_folder

AUDIO = {"name": "cnn14", "sample_rate": 16000, "channels": [4, 8, 16, 32, 64, 64], "num_classes": 0}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def make_text_folder(folder: Path) -> Path:
    """A local transformers folder: tiny BERT config + the MiniLM tokenizer files."""
    from transformers import BertConfig

    folder.mkdir(parents=True, exist_ok=True)
    BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    ).save_pretrained(str(folder))
    source = resolve_folder("")
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


def tiny_config(text_folder: Path, logit_scale_max: float | None = None) -> dict:
    return {
        "audio": dict(AUDIO),
        "text": {"name": "bert", "folder": str(text_folder), "pretrained": False, "max_tokens": 30},
        "embed_dim": 16,
        "logit_scale_init": 2.6592600,
        "logit_scale_max": logit_scale_max,
        "sample_rate": 16000,
    }


def tiny_biencoder(text_folder: Path):
    return build_biencoder(tiny_config(text_folder))
