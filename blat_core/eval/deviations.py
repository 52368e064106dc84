"""Where this run differs from the paper, or the paper is silent and we chose: the report's "Deviations
from the paper" section, generated from the params in force so that it is never stale. Each entry names
the params key that switches to the alternative where one exists."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blat_core.bootstrap.synthesis import SynthesizeParams
from blat_core.data.prepare import PrepareParams
from blat_core.eval.tasks import TASKS
from blat_core.models.audio.encoder import AudioEncoderParams
from blat_core.models.text.encoder import TextEncoderParams
from blat_core.params import from_dict, load_params_file, load_section
from blat_core.train.captioner import CaptionerParams
from blat_core.train.pretrain import PretrainParams

PAPER_CHANNELS = [64, 128, 256, 512, 1024, 2048]
PAPER_STEPS = {"stage1": 200_000, "stage2": 15_000}


@dataclass(frozen=True)
class Settings:
    """The params sections the deviations are computed from (their dataclasses)."""

    pretrain: Any  # PretrainParams
    synthesize: Any  # SynthesizeParams
    captioner: Any  # CaptionerParams
    audio_encoder: Any  # AudioEncoderParams
    text_encoder: Any  # TextEncoderParams
    sample_rate: int  # prepare.sample_rate
    tasks: dict[str, Any]  # evaluate.tasks.<name> -> its params
    external: list[str] = field(default_factory=list)  # evaluate.external_models names (imported checkpoints)


def load_settings(params_file: Path) -> Settings:
    """The params sections the report's deviations and empty-cell reasons are computed from."""
    evaluate = load_params_file(params_file).get("evaluate", {})
    tasks = evaluate.get("tasks", {})
    return Settings(
        pretrain=load_section(params_file, "pretrain", PretrainParams),
        synthesize=load_section(params_file, "synthesize", SynthesizeParams),
        captioner=load_section(params_file, "captioner", CaptionerParams),
        audio_encoder=load_section(params_file, "audio_encoder", AudioEncoderParams),
        text_encoder=load_section(params_file, "text_encoder", TextEncoderParams),
        sample_rate=load_section(params_file, "prepare", PrepareParams).sample_rate,
        tasks={name: from_dict(TASKS[name].params, data, f"evaluate.tasks.{name}") for name, data in tasks.items()},
        external=sorted(evaluate.get("external_models") or {}),
    )


def text_tower_words(folder: str) -> str:
    """A text folder as the report may print it: its name and its config's shape, never the machine's path."""
    if not folder:
        return "all-MiniLM-L6-v2 (the default folder)"
    path = Path(folder).expanduser()
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        shape = (f"{config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
                 f"{config['num_attention_heads']} heads, vocabulary {config['vocab_size']}")  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        shape = "config.json unreadable"
    return f"a local folder `{path.name}` ({shape})"


def deviations(s: Settings) -> list[dict[str, str]]:
    """[{topic, ours, paper, switch}] for every place we differ or chose."""
    p, out = s.pretrain, []

    def add(topic: str, ours: str, paper: str, switch: str = "—") -> None:
        out.append({"topic": topic, "ours": ours, "paper": paper, "switch": switch})

    splits = ", ".join(s.synthesize.label_splits)
    add("Synthesis filter", f"keep an AudioSet clip only if all its labels occur among AudioCaps {splits} labels",
        "all labels among AudioCaps clips' labels (splits unsaid)", "`synthesize.label_splits`")
    add("Leakage guard", "a clip whose YouTube id is in any evaluation split (AudioSet eval, AudioCaps val/test, "
        "VGGSound test) is never trained on, in any stage", "AudioCaps val/test removed from the synthetic set")
    add("Pre-training model selection", "the step with the best AudioCaps val geometric mean of the six recalls, "
        f"validated every {p.stage1.val_every} (stage 1) / {p.stage2.val_every} (stage 2) steps",
        "not said", "`pretrain.stage1.val_every`, `pretrain.stage2.val_every`")
    realonly = p.schedule("realonly").steps
    add("Real-only baseline's compute", f"{realonly} steps ({p.realonly_compute}); stage 1 + stage 2 ran "
        f"{p.stage1.steps + p.stage2.steps}", "not said", "`pretrain.realonly_compute: matched`")
    cap = "unclamped" if p.logit_scale_max is None else f"capped at {p.logit_scale_max:.3g}"
    add("Logit scale", cap, "unclamped (the reference code)", "`pretrain.logit_scale_max: null`")
    add("Scale of this run", f"CNN14 channels {s.audio_encoder.channels} at {s.sample_rate} Hz, embed {p.embed_dim}, "
        f"batch {p.batch_size}, {p.stage1.steps} + {p.stage2.steps} steps",
        f"channels {PAPER_CHANNELS} at 32 kHz, embed 1024, batch 128, "
        f"{PAPER_STEPS['stage1']:,} + {PAPER_STEPS['stage2']:,} steps", "params.paper.yaml")
    add("Text tower", f"{s.text_encoder.name} from {text_tower_words(s.text_encoder.folder)}", "BERT-medium",
        "`text_encoder.folder`")
    add("Captioner schedule (Table 3)", f"{s.captioner.epochs} epochs, batch {s.captioner.batch_size}, lr decaying "
        f"to {s.captioner.final_lr:g}", "25 epochs, batch 64, lr decaying to 5e-7",
        "`captioner.epochs`, `.batch_size`, `.final_lr`")
    finetune = s.tasks.get("finetune")
    if finetune is not None:
        sets = f"the first {finetune.max_sets} fold(s)/split(s)" if finetune.max_sets else "every fold/split"
        add("Fine-tuned classification", f"{finetune.steps} steps on {sets}, {finetune.max_seconds:g} s training "
            f"crops, final weights kept (no model selection), the new head at {finetune.head_lr_scale:g}× the "
            "tower's LR",
            "to convergence on every fold; head LR not said",
            "`evaluate.tasks.finetune.steps`, `.max_sets`, `.head_lr_scale`")
    add("AudioSet probe / fine-tune training split", "balanced_train (AudioSet recipe)", "not said")
    tuned = s.tasks.get("retrieval_finetune")
    if tuned is not None:
        add("Fine-tuned retrieval", f"{tuned.steps} steps from {', '.join(tuned.models)}, {tuned.max_seconds:g} s "
            "training crops; the step with the best validation geometric mean is kept, the start weights (step 0) "
            "included, for every start alike",
            "not said", "`evaluate.tasks.retrieval_finetune.steps`")
    return out
