"""The paper profile's inputs in miniature: tiny datasets laid out as each one is really downloaded (the
defaults of params.paper.yaml, SPEC §4 "How the audio is laid out as people actually download it"), a
random-weight PANNs checkpoint as PANNs' training script writes it, and a BERT-medium-shaped folder.

The clips are the demo corpus's (real metadata formats, real AudioSet names and mids for its classes,
files at the datasets' own sample rates), moved into the download layouts:
    audioset   metadata/*.csv + audios/{balanced_train,eval}_segments/Y<id>.flac and
               audios/unbalanced_train_segments/unbalanced_train_segments_part00/Y<id>.flac (PANNs scripts);
               class_labels_indices.csv padded to AudioSet's 527 classes (the PANNs head has 527 rows)
    audiocaps  {train,val,test}.csv beside audio_32000Hz/<split>/<id>_<start>.wav (aac-datasets' tree)
    clotho     the caption CSVs beside development/ validation/ evaluation/ (Zenodo, one root)
    macs       MACS.yaml beside TAU-urban-acoustic-scenes-2019-development/audio/
    esc50, us8k, fsd50k   as their archives extract (meta/ + audio/, metadata/ + audio/foldN/, ground truth
               beside FSD50K.{dev,eval}_audio/)
    vggsound   vggsound.csv beside audio/<id>_<start:06d>.flac
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import torch

ROOTS = {"audioset": "audioset", "audiocaps": "AUDIOCAPS", "clotho": "clotho", "macs": "macs", "esc50": "ESC-50",
         "us8k": "UrbanSound8K", "fsd50k": "FSD50K", "vggsound": "vggsound"}  # fmt: skip
AUDIOSET_CLASSES = 527


def lay_out(demo: Path, data: Path) -> dict[str, Path]:
    """Move a demo corpus (`build_corpus` output) into the download layouts under `data`; returns the roots."""
    roots = {name: data / folder for name, folder in ROOTS.items()}
    _audioset(demo / "audioset", roots["audioset"])
    audiocaps = roots["audiocaps"]
    _copy_files(demo / "audiocaps" / "metadata", audiocaps)
    shutil.copytree(demo / "audiocaps" / "audio", audiocaps / "audio_32000Hz")
    _copy_files(demo / "clotho" / "metadata", roots["clotho"])
    for split in (demo / "clotho" / "audio").iterdir():
        shutil.copytree(split, roots["clotho"] / split.name)
    _copy_files(demo / "macs" / "metadata", roots["macs"])
    shutil.copytree(demo / "macs" / "audio", roots["macs"] / "TAU-urban-acoustic-scenes-2019-development" / "audio")
    for name in ("esc50", "us8k", "fsd50k"):
        shutil.copytree(demo / name, roots[name])
    _copy_files(demo / "vggsound" / "metadata", roots["vggsound"])
    shutil.copytree(demo / "vggsound" / "audio", roots["vggsound"] / "audio")
    return roots


def _copy_files(folder: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        shutil.copy2(path, into / path.name)


def _audioset(demo: Path, root: Path) -> None:
    _copy_files(demo / "metadata", root / "metadata")
    for split in ("balanced_train", "eval", "unbalanced_train"):
        target = root / "audios" / f"{split}_segments"
        if split == "unbalanced_train":
            target = target / "unbalanced_train_segments_part00"
        shutil.copytree(demo / "audio" / split, target)
    labels = root / "metadata" / "class_labels_indices.csv"
    with labels.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, classes = rows[0], rows[1:]
    classes += [[str(i), f"/t/rehearsal{i:03d}", f"Rehearsal class {i}"] for i in range(len(classes), AUDIOSET_CLASSES)]
    with labels.open("w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_MINIMAL).writerows([header, *classes])


def panns_checkpoint(path: Path) -> Path:
    """A random-weight full CNN14 at 32 kHz under the official PANNs key names (torchlibrosa front-end
    buffers, 513 rows; fc_audioset 527 x 2048), saved as PANNs' pytorch/main.py saves its checkpoints:
    {'iteration', 'model', 'sampler'} with the balanced sampler's numpy state."""
    from blat_core.models.audio.cnn14 import Cnn14
    from blat_core.models.audio.panns import panns_key

    torch.manual_seed(0)
    ours = Cnn14(32000, num_classes=AUDIOSET_CLASSES).state_dict()
    model = {panns_key(k): v for k, v in ours.items() if not k.startswith("frontend.")}
    model["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    model["spectrogram_extractor.stft.conv_imag.weight"] = torch.zeros(513, 1, 1024)
    model["logmel_extractor.melW"] = torch.zeros(513, 64)
    sampler = {"indexes_per_class": [np.arange(k, 100, AUDIOSET_CLASSES) for k in range(AUDIOSET_CLASSES)],
               "queue": list(range(10)), "pointers_of_classes": [0] * AUDIOSET_CLASSES}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"iteration": 0, "model": model, "sampler": sampler}, path)
    return path


def bert_medium_folder(folder: Path) -> Path:
    """Random weights in BERT-medium's shape (prajjwal1/bert-medium: 8 layers, hidden 512, 8 heads, FFN 2048),
    saved with its pooler as released folders are, and the uncased 30522-word tokenizer files the MiniLM
    package ships."""
    from transformers import BertConfig, BertModel

    from blat_core.models.text.encoder import resolve_folder

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                        intermediate_size=2048, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (resolve_folder("") / name).is_file():
            shutil.copy(resolve_folder("") / name, folder / name)
    return folder
