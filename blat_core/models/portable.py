"""The exported model folder (`blat export`) and `blat_core.load_model`: a BLAT bi-encoder any Python user
loads with one call, without the pipeline, the network or a transformers folder elsewhere on the machine.

Exported folder, format version 1:
    config.json         {"format": "blat-model", "format_version": 1, "embed_dim", "sample_rate",
                         "window_seconds", "audio": {...}, "text": {"name", "max_tokens"}, "text_config": {the
                         text tower's transformers config}, "logit_scale_max", "source": {...}}
    model.safetensors   every weight of the bi-encoder (the pipeline's key names)
    tokenizer.json, tokenizer_config.json, vocab.txt, special_tokens_map.json
    README.md           the model card (written by the exporter's caller: blat_core/app/model_card.py)
    audio.onnx, text.onnx   with `--format onnx` (`export_onnx`)

    import blat_core
    model = blat_core.load_model("exported/blat_stage2")          # or a pipeline folder, data/models/blat_stage2
    audio = model.embed_audio(["dog.wav", "rain.flac"])            # (2, E) float32, L2-normalised
    text = model.embed_text(["a dog barks", "rain on a roof"])     # (2, E)
    similarity = audio @ text.T

Audio given as arrays is treated exactly as files are: mixed to mono, resampled to the model's rate and rounded
to 16-bit (what the pipeline trains and scores on); a clip longer than `window_seconds` is the normalised mean
of fixed windows covering it (never a random crop).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from blat_core.atomic import atomic_path
from blat_core.models.blat_model import build_biencoder, load_blat
from blat_core.models.checkpoints import CheckpointError, check_sizes, file_digest, load_strict, read_sidecar
from blat_core.models.text.encoder import Tokenizer

FORMAT = "blat-model"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
AUDIO_ONNX, TEXT_ONNX = "audio.onnx", "text.onnx"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
WINDOW_SECONDS = 10.0  # the window `blat embed` and the pipeline's long-clip embedding use
ONNX_OPSET = 18


class FormatError(CheckpointError):
    """A folder that is not an exported BLAT model, or one of a format version this code does not read."""


CLASSIFIER_FILES = ("classifier.json", "classifier.safetensors")  # blat_core.models.classifier


def export_folder(source: str | Path, out: str | Path, card: str, source_meta: dict | None = None) -> Path:
    """Write the exported folder for the pipeline's model folder `source` (blat.json + blat.safetensors + text/)
    at `out`, atomically (a failed export leaves nothing); `card` is README.md's text."""
    source, out = Path(source), Path(out)
    config, meta = read_sidecar(source / "blat", kind="biencoder")
    model, _, _ = load_blat(source)  # every weight checked against its config before anything is written
    text_folder = source / config["text"]["folder"]
    text_config = json.loads((text_folder / "config.json").read_text(encoding="utf-8"))
    exported = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "embed_dim": int(config["embed_dim"]),
        "sample_rate": int(config["sample_rate"]),
        "window_seconds": WINDOW_SECONDS,
        "audio": config["audio"],
        "text": {"name": config["text"]["name"], "max_tokens": int(config["text"]["max_tokens"])},
        "text_config": text_config,
        "logit_scale_max": config.get("logit_scale_max"),
        "source": {**(source_meta or {}), "weights_blake2b": file_digest(source / "blat.safetensors"),
                   "stage": meta.get("stage")},  # fmt: skip
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        shutil.copyfile(source / "blat.safetensors", tmp / WEIGHTS)
        for name in TOKENIZER_FILES:
            if (text_folder / name).is_file():
                shutil.copyfile(text_folder / name, tmp / name)
        (tmp / CONFIG).write_text(json.dumps(exported, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / CARD).write_text(card, encoding="utf-8")
        for name in CLASSIFIER_FILES:  # a fine-tuned classifier's head (finetuned@<name>) travels with its tower
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
    del model
    return out


def read_config(folder: str | Path) -> dict:
    """An exported folder's config.json, its format and version checked (a clear error for any other)."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FormatError(f"{folder} has no {CONFIG}: not an exported BLAT model folder (make one with "
                          "`blat export MODEL --out FOLDER`)")  # fmt: skip
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"{path} is not a readable JSON file ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise FormatError(f"{path} does not describe a BLAT model (its \"format\" is "
                          f"{config.get('format') if isinstance(config, dict) else None!r}, expected {FORMAT!r}); a "
                          "transformers folder is not a BLAT model")  # fmt: skip
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FormatError(f"{path}: its format_version {version!r} is not a whole number")
    if version > FORMAT_VERSION:
        raise FormatError(f"{folder} is an exported BLAT model of format version {version}, newer than this "
                          f"blat-pipeline reads ({FORMAT_VERSION}): upgrade blat-pipeline to load it")  # fmt: skip
    if version < FORMAT_VERSION:
        raise FormatError(f"{folder} is an exported BLAT model of format version {version}, older than this "
                          f"blat-pipeline reads ({FORMAT_VERSION}): export it again with this version "
                          "(`blat export`)")  # fmt: skip
    try:
        check_sizes(config, path, "config")
    except CheckpointError as error:
        raise FormatError(str(error)) from None
    return config


def _load_exported(folder: Path) -> tuple[torch.nn.Module, Tokenizer, dict]:
    from safetensors.torch import load_file

    config = read_config(folder)
    try:
        architecture = {
            "audio": config["audio"],
            "text": {**config["text"], "hf_config": config["text_config"], "pretrained": False},
            "embed_dim": config["embed_dim"],
            "logit_scale_max": config.get("logit_scale_max"),
        }
        model = build_biencoder(architecture)
    except (KeyError, TypeError, ValueError) as error:
        raise FormatError(f"{folder / CONFIG} describes no model this code can build ({type(error).__name__}: "
                          f"{str(error)[:200]})") from None  # fmt: skip
    weights = folder / WEIGHTS
    try:
        state = load_file(str(weights))
    except Exception as error:  # SafetensorError, OSError: missing, truncated or foreign
        raise FormatError(f"{weights} is not a readable safetensors file ({error})") from None
    load_strict(model, state, str(weights))
    return model.eval(), Tokenizer(folder, int(config["text"]["max_tokens"])), config


class BlatModel:
    """A loaded BLAT bi-encoder: `embed_audio` and `embed_text` give L2-normalised float32 numpy rows in one
    shared space (cosine similarity = dot product). `model` and `tokenizer` are the PyTorch parts."""

    def __init__(self, model, tokenizer: Tokenizer, config: dict, folder: Path, device="cpu"):
        self.model, self.tokenizer, self.config, self.folder = model, tokenizer, config, folder
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.sample_rate = int(config["sample_rate"])
        self.embed_dim = int(config["embed_dim"])
        self.window_seconds = float(config.get("window_seconds", WINDOW_SECONDS))

    def embed_audio(self, audio: Sequence, sample_rate: int | None = None, batch_size: int = 16) -> np.ndarray:
        """(N, E) for N files (paths) or N waveforms (numpy arrays: float in [-1, 1] or int16, shape (samples,)
        or (channels, samples), at `sample_rate`, which arrays require)."""
        from blat_core.data.audio import AudioError
        from blat_core.models.inference import WindowEmbedder, embed_file, windows

        if isinstance(audio, (str, Path, np.ndarray)):
            raise TypeError("embed_audio takes a list of paths or waveforms (wrap a single one in a list)")
        window = int(self.window_seconds * self.sample_rate)
        embedder = WindowEmbedder(self.model, batch_size, self.device)
        for clip, item in enumerate(audio):
            if not isinstance(item, (str, Path)):
                for piece in windows(self._wave(item, sample_rate), window):
                    embedder.add(clip, piece)
                continue
            try:  # a file streams through window by window, whatever its length
                embed_file(embedder, clip, item, self.sample_rate, window)
            except AudioError as error:
                raise ValueError(f"{item}: {error.reason} ({error.detail})") from None
        return embedder.finish(len(audio))

    def embed_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(M, E) for M captions or prompts (at most `config["text"]["max_tokens"]` tokens each; longer is cut)."""
        from blat_core.models.embed import embed_captions

        if isinstance(texts, str):
            raise TypeError("embed_text takes a list of strings (wrap a single one in a list)")
        return embed_captions(self.model, self.tokenizer, list(texts), batch_size, self.device).numpy()

    def _wave(self, wave, sample_rate: int | None) -> np.ndarray:
        from blat_core.data.audio import quantise, resample

        if sample_rate is None:
            raise ValueError("embed_audio got waveforms without sample_rate: pass sample_rate=<their rate in Hz>")
        wave = np.asarray(wave)
        if wave.dtype == np.int16:  # the inverse of quantise: int16 audio at the model's rate passes unchanged
            wave = wave.astype(np.float32) / 32767.0
        elif wave.dtype.kind != "f":
            raise ValueError(f"a waveform must be float (in [-1, 1]) or int16 samples, not {wave.dtype}")
        if wave.ndim == 2:
            wave = wave.mean(axis=0)
        if wave.ndim != 1 or len(wave) == 0:
            raise ValueError(f"a waveform must be a non-empty (samples,) or (channels, samples) array, not "
                             f"{wave.shape}")
        return quantise(resample(wave.astype(np.float32), int(sample_rate), self.sample_rate))


def load_model(folder: str | Path, device="cpu") -> BlatModel:
    """A BLAT model from an exported folder (`blat export`) or a pipeline model folder (data/models/blat_*):
    nothing is downloaded, no code from the folder runs, every weight must fit the config."""
    folder = Path(folder)
    if (folder / "blat.json").is_file() and not (folder / CONFIG).is_file():
        model, tokenizer, _ = load_blat(folder)
        config = read_sidecar(folder / "blat", kind="biencoder")[0]
        return BlatModel(model, tokenizer, config, folder, device)
    model, tokenizer, config = _load_exported(folder)
    return BlatModel(model, tokenizer, config, folder, device)


class _Tower(torch.nn.Module):
    """One tower of the bi-encoder as a graph of two inputs: `encode_audio` or `encode_text`."""

    def __init__(self, model, encode: str):
        super().__init__()
        self.model, self.encode = model, encode

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.encode)(first, second)


def export_onnx(loaded: BlatModel, folder: str | Path) -> dict[str, Path]:
    """audio.onnx ((B, T) float32 waveform in [-1, 1] at the model's rate + (B,) int64 valid lengths ->
    (B, E) audio_embedding; dynamic batch and length) and text.onnx ((B, L) int64 input_ids + attention_mask
    -> (B, E) text_embedding) into `folder`, fp32, traced on the CPU."""
    import warnings

    folder = Path(folder)
    model = loaded.model.to("cpu").float().eval()
    rate = loaded.sample_rate
    wave = torch.zeros(2, 3 * rate)
    wave[0].normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    wave[1, : 2 * rate].normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([3 * rate, 2 * rate])
    tokens = loaded.tokenizer(["a dog barks", "rain falls on a tin roof while thunder rumbles far away"])
    batch = torch.export.Dim("batch")
    samples = torch.export.Dim("samples", min=rate // 10)
    text_tokens = torch.export.Dim("tokens", max=int(loaded.config["text"]["max_tokens"]))
    towers = {  # (file, method, example inputs, input names, output name, dynamic axes per input)
        "audio": (AUDIO_ONNX, "encode_audio", (wave, lengths), ["waveform", "lengths"], "audio_embedding",
                  ({0: batch, 1: samples}, {0: batch})),
        "text": (TEXT_ONNX, "encode_text", (tokens["input_ids"], tokens["attention_mask"]),
                 ["input_ids", "attention_mask"], "text_embedding", ({0: batch, 1: text_tokens},) * 2),
    }  # fmt: skip
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracing chatter
        for kind, (name, method, inputs, input_names, output, axes) in towers.items():
            paths[kind] = folder / name
            with atomic_path(paths[kind]) as tmp:
                torch.onnx.export(_Tower(model, method), inputs, str(tmp), dynamo=True, opset_version=ONNX_OPSET,
                                  input_names=input_names, output_names=[output], dynamic_shapes=axes,
                                  external_data=False, verbose=False)  # fmt: skip
    model.to(loaded.device)
    return paths


ONNX_TOLERANCE = 1.0e-4  # fp32: max |onnxruntime - PyTorch| on L2-normalised embeddings


def onnx_inputs(loaded: BlatModel, seed: int = 0) -> list[tuple[dict, dict]]:
    """Check inputs of several shapes: ({audio feeds}, {text feeds}) with padded rows and a one-row batch."""
    rng = np.random.default_rng(seed)
    rate, cases = loaded.sample_rate, []
    long_caption = "a man speaks while cars pass by on a wet road"
    for batch, seconds, captions in ((1, 1.0, ["a dog barks"]), (3, 2.5, ["rain", long_caption, "birds sing"])):
        samples = int(seconds * rate)
        wave = rng.normal(0, 0.1, (batch, samples)).astype(np.float32)
        lengths = np.full(batch, samples, dtype=np.int64)
        lengths[1:] = samples // 2  # padded rows: zeros past their length
        wave[1:, samples // 2 :] = 0
        tokens = loaded.tokenizer(captions)
        cases.append(({"waveform": wave, "lengths": lengths},
                      {k: v.numpy().astype(np.int64) for k, v in tokens.items()}))  # fmt: skip
    return cases


def check_onnx(loaded: BlatModel, folder: str | Path) -> dict[str, float]:
    """Max |onnxruntime - PyTorch| of audio.onnx and text.onnx in `folder` on `onnx_inputs`; raises past
    ONNX_TOLERANCE (the export is then not trusted)."""
    import onnxruntime

    folder = Path(folder)
    model = loaded.model.to("cpu").float().eval()
    sessions = {kind: onnxruntime.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
                for kind, name in (("audio", AUDIO_ONNX), ("text", TEXT_ONNX))}  # fmt: skip
    worst = {"audio": 0.0, "text": 0.0}
    with torch.no_grad():
        for audio, text in onnx_inputs(loaded):
            reference = model.encode_audio(torch.from_numpy(audio["waveform"]), torch.from_numpy(audio["lengths"]))
            got = sessions["audio"].run(None, audio)[0]
            worst["audio"] = max(worst["audio"], float(np.abs(got - reference.numpy()).max()))
            reference = model.encode_text(torch.from_numpy(text["input_ids"]), torch.from_numpy(text["attention_mask"]))
            got = sessions["text"].run(None, text)[0]
            worst["text"] = max(worst["text"], float(np.abs(got - reference.numpy()).max()))
    model.to(loaded.device)
    for kind, value in worst.items():
        if not value <= ONNX_TOLERANCE:
            raise CheckpointError(f"{folder / (AUDIO_ONNX if kind == 'audio' else TEXT_ONNX)} differs from PyTorch by "
                                  f"{value:.2e} (> {ONNX_TOLERANCE:.0e}): the ONNX export is not faithful")  # fmt: skip
    return worst
