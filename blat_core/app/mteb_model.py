"""A BLAT model folder as an `mteb` model, so the harness behind the MTEB/MAEB leaderboard can score it:

    import mteb
    from blat_core.app.mteb_model import blat_mteb_model

    model = blat_mteb_model("exported/blat_stage2")
    tasks = mteb.get_benchmark("MAEB")            # needs the Hugging Face hub (the tasks' datasets)
    results = mteb.evaluate(model, tasks)

Audio comes from the harness as {"array", "sampling_rate"} rows; it is embedded as `blat_core.load_model`
embeds arrays (mono, resampled to the model's rate, 16-bit, windows for long clips). Text rows (captions,
zero-shot candidate labels) go through the text tower. Similarity: cosine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def blat_mteb_model(folder: str | Path, device: str = "cpu", name: str | None = None):
    """An mteb encoder (AbsEncoder with its ModelMeta) over the BLAT model folder `folder`."""
    from mteb.models import ModelMeta
    from mteb.models.abs_encoder import AbsEncoder

    from blat_core.models.portable import load_model

    loaded = load_model(folder, device)
    folder = Path(folder)
    model_name = name or f"blat/{folder.resolve().name}"

    class BlatEncoder(AbsEncoder):
        """Audio and text embeddings of one BLAT bi-encoder (L2-normalised: cosine = dot product)."""

        def __init__(self):
            self.blat = loaded
            self.mteb_model_meta = meta

        def _rows(self, inputs) -> tuple[list, list]:
            audio, text = [], []
            for batch in inputs:
                audio.extend(batch.get("audio", []))
                text.extend(batch.get("text", []))
            return audio, text

        def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type=None,
                   **kwargs: Any) -> np.ndarray:  # fmt: skip
            features = inputs.dataset.features if hasattr(inputs.dataset, "features") else {}
            audio_rows, text_rows = self._rows(inputs)
            parts = []
            if "audio" in features or audio_rows:
                parts.append(self.embed_audio_rows(audio_rows))
            if "text" in features or text_rows:
                parts.append(self.blat.embed_text([str(t) for t in text_rows]))
            if not parts:
                raise ValueError(f"{task_metadata.name}: the harness gave neither audio nor text to encode")
            if len(parts) == 2:  # a row with both (fused inputs): the sum of the two embeddings, as CLAP's wrapper
                if len(parts[0]) != len(parts[1]):
                    raise ValueError("as many audio rows as text rows are needed to fuse them")
                return parts[0] + parts[1]
            return parts[0]

        def embed_audio_rows(self, rows: list) -> np.ndarray:
            if not rows:
                return np.zeros((0, self.blat.embed_dim), np.float32)
            embeddings = []
            for row in rows:  # rows may differ in rate; each array is resampled to the model's
                array, rate = _array_and_rate(row)
                embeddings.append(self.blat.embed_audio([array], sample_rate=rate)[0])
            return np.stack(embeddings)

    meta = ModelMeta(
        loader=None,
        name=model_name,
        revision=loaded.config.get("source", {}).get("weights_blake2b", "local") or "local",
        release_date=None,
        languages=["eng-Latn"],
        modalities=["audio", "text"],
        n_parameters=sum(p.numel() for p in loaded.model.parameters()),
        memory_usage_mb=None,
        max_tokens=int(loaded.config["text"]["max_tokens"]),
        embed_dim=loaded.embed_dim,
        license=None,
        open_weights=True,
        public_training_code="https://github.com/blat-pipeline",
        public_training_data=None,
        framework=["PyTorch"],
        reference=None,
        similarity_fn_name="cosine",
        use_instructions=False,
        training_datasets=None,
    )
    return BlatEncoder()


def _array_and_rate(row) -> tuple[np.ndarray, int]:
    """(samples, rate) of one harness audio row: {"array", "sampling_rate"} (a dict, or datasets' decoder, which
    answers the same keys)."""
    try:
        return np.asarray(row["array"], dtype=np.float32), int(row["sampling_rate"])
    except (KeyError, TypeError, IndexError) as error:
        raise TypeError(f"an audio row of type {type(row).__name__} has no array and sampling_rate ({error})") from None


# The MAEB / MTEB tasks that score what the BLAT paper scores (Tables 2 and 5): retrieval both ways on AudioCaps
# and Clotho, zero-shot ESC-50 and UrbanSound8K. `--benchmark "MAEB(v1)"` runs the whole audio benchmark instead.
BLAT_TASKS = ("AudioCapsT2ARetrieval", "AudioCapsA2TRetrieval", "ClothoT2ARetrieval.v2", "ClothoA2TRetrieval.v2",
              "ESC50_Zeroshot", "UrbanSound8kZeroshot")  # fmt: skip


def evaluate(folder: str | Path, out: str | Path, tasks=None, benchmark: str | None = None, device: str = "cpu"):
    """Run mteb on the model folder: `tasks` (names or task objects; default BLAT_TASKS) or a named benchmark;
    results in mteb's own layout under `out` (its ResultCache, as the leaderboard's results repository holds
    them). Returns mteb's results object."""
    import mteb

    model = blat_mteb_model(folder, device)
    if benchmark:
        chosen = mteb.get_benchmark(benchmark).tasks
    else:
        names = [t for t in (tasks or BLAT_TASKS) if isinstance(t, str)]
        chosen = [t for t in (tasks or []) if not isinstance(t, str)]
        chosen += list(mteb.get_tasks(tasks=names)) if names else []
    return mteb.evaluate(model, chosen, cache=mteb.ResultCache(cache_path=Path(out)))


def summary(results) -> list[tuple[str, float]]:
    """(task, its main score) per task result."""
    return [(r.task_name, float(r.get_score())) for r in results.task_results]
