"""The authors' BLAT checkpoint format, built from their facts: random weights under exactly the key list and
shapes their AudioTextClip has (tests/fixtures/authors_blat_state_dict.json, recorded from their code), and a
BERT-medium-shaped local text folder. Shared by the import tests and the reproduction-receipts tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from tests.conftest import ROOT

AUTHORS = json.loads((ROOT / "tests" / "fixtures" / "authors_blat_state_dict.json").read_text())


def medium_text_folder(folder: Path) -> Path:
    """A BERT-medium-shaped local folder (config as prajjwal1/bert-medium: 8 layers, hidden 512, 8 heads,
    FFN 2048) with the uncased 30522-word tokenizer files the MiniLM package ships."""
    from transformers import BertConfig

    from blat_core.models.text.encoder import resolve_folder

    folder.mkdir(parents=True, exist_ok=True)
    BertConfig(vocab_size=30522, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
               intermediate_size=2048, max_position_embeddings=512).save_pretrained(str(folder))  # fmt: skip
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (resolve_folder("") / name).is_file():
            shutil.copy(resolve_folder("") / name, folder / name)
    return folder


def authors_state(with_position_ids: bool) -> dict[str, torch.Tensor]:
    """Random weights under exactly the recorded key list; the front-end buffers as the authors' Cnn14 builds
    them (torchaudio MelSpectrogram: 32 kHz, n_fft = win 1024, hop 320, 50-14000 Hz, 64 Slaney bands)."""
    import torchaudio

    generator = torch.Generator().manual_seed(3)
    front = torchaudio.transforms.MelSpectrogram(sample_rate=32000, n_fft=1024, win_length=1024, hop_length=320,
                                                 f_min=50, f_max=14000, n_mels=64, norm="slaney",
                                                 mel_scale="slaney").state_dict()  # fmt: skip
    state = {}
    for key, (shape, dtype) in AUTHORS["keys"].items():
        if key.startswith("audio_encoder.melspec_extractor."):
            state[key] = front[key[len("audio_encoder.melspec_extractor.") :]].clone()
        elif dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = 0.02 * torch.randn(shape, generator=generator)
    state["logit_scale"] = torch.tensor(2.6592600)
    if with_position_ids:  # transformers < 4.31 saved this buffer (persistent then)
        state["text_encoder.model.embeddings.position_ids"] = torch.arange(512)[None]
    return state
