"""Tiny model folders for the command-line and web tests: a BLAT bi-encoder, a tagger over three classes
and a tag-guided captioner, all with random weights, saved as the pipeline saves them."""

from __future__ import annotations

from pathlib import Path

import torch

from blat_core.models.audio.encoder import build_audio_encoder
from blat_core.models.blat_model import save_blat
from blat_core.models.captioner.io import save_captioner
from blat_core.models.captioner.model import Captioner
from blat_core.models.captioner.vocab import Vocabulary
from blat_core.models.checkpoints import save_model
from blat_core.models.text.encoder import Tokenizer
from tests.helpers.tiny_biencoder import AUDIO, make_text_folder, tiny_biencoder, tiny_config

CLASSES = [("/m/dog", "Dog"), ("/m/rain", "Rain"), ("/m/speech", "Speech")]


def make_models(root: Path) -> Path:
    """root/blat, root/tagger, root/captioner."""
    text_folder = make_text_folder(root / "text_src")
    torch.manual_seed(0)
    model = tiny_biencoder(text_folder).eval()
    (root / "blat").mkdir()
    save_blat(root / "blat", model, model.state_dict(), tiny_config(text_folder), Tokenizer(text_folder, 30), {})
    tagger = build_audio_encoder({**AUDIO, "num_classes": len(CLASSES)})
    save_model(root / "tagger" / "tagger", tagger.state_dict(), "audio_encoder", {**AUDIO, "num_classes": len(CLASSES)},
               {"classes": [list(c) for c in CLASSES]})  # fmt: skip
    vocab = Vocabulary.build(["a dog barks", "rain falls on a roof", "a man speaks"])
    config = {"feature_dim": tagger.embedding_dim, "vocab_size": len(vocab), "num_tags": len(CLASSES), "use_tags": True}
    (root / "captioner").mkdir()
    decoding = {"beam": 3, "max_tokens": 20}  # as the captioner params record them
    save_captioner(root / "captioner", Captioner(**config).state_dict(), config, vocab, CLASSES, decoding)
    return root
