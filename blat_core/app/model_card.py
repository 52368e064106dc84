"""The model card (README.md) of an exported model folder, in the Hugging Face convention: YAML front matter
(license, tags, datasets, model-index with this run's metrics and their coverage), then the training data, the
provenance (stage, params digest, DVC hash of the model, the dvc.lock revision) and how to load it.

Everything comes from the project the model was made in: dvc.yaml/dvc.lock (which stage wrote the folder, what
it and its upstream stages read), params.yaml (where each dataset lives) and the metrics JSONs of the run.
A number appears only when a metrics file holds it for this model's name.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from blat_core.data.real_captions import KEY as REAL_DATASETS_KEY
from blat_core.data.sources import DEMO_RECORD, SOURCES, read_generated
from blat_core.yaml_input import safe_load

# How each evaluation task reads in a card: (front-matter task type, title, metric keys shown).
TASKS = {
    "retrieval": ("audio-text-retrieval", "Audio-text retrieval (zero-shot)"),
    "zeroshot": ("zero-shot-audio-classification", "Zero-shot classification"),
    "linear_probe": ("audio-classification", "Linear probe on the frozen audio embedding"),
    "finetune": ("audio-classification", "Fine-tuned from this model (not this model's own weights)"),
    "captioning": ("audio-captioning", "Captioner trained on this model's frozen audio features"),
}
FRONT_MATTER_TASKS = ("retrieval", "zeroshot", "linear_probe")  # properties of these very weights
SHOWN = {
    "retrieval": [("text_to_audio", "R@1"), ("text_to_audio", "R@5"), ("text_to_audio", "R@10"),
                  ("audio_to_text", "R@1"), ("audio_to_text", "R@5"), ("audio_to_text", "R@10")],
    "zeroshot": [("accuracy",), ("mAP",)],
    "linear_probe": [("accuracy", "mean"), ("mAP", "mean")],
    "finetune": [("accuracy", "mean"), ("mAP", "mean")],
    "captioning": [("bleu_4",), ("meteor",), ("rouge_l",), ("cider",), ("spice",), ("spider",), ("fense",)],
}  # fmt: skip


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _canonical_digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _read_yaml(path: Path):
    return safe_load(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else None


class Provenance:
    """Which current stage of `root`'s dvc.yaml wrote `model` (a path inside root), its lock entry, and the
    stages upstream of it (through deps that are other stages' outputs)."""

    def __init__(self, root: Path, model: Path):
        self.root = root.resolve()
        try:
            self.path = model.resolve().relative_to(self.root).as_posix()
        except ValueError:
            self.path = None
        lock = _read_yaml(self.root / "dvc.lock") or {}
        entries = lock.get("stages", {}) if isinstance(lock, dict) else {}
        self.stage, self.up_to_date = None, None  # up_to_date: `dvc status <stage>` empty; None when unknown
        try:  # one DVC repo opened for both questions (a second open re-reads dvc.yaml and the lock)
            from dvc.repo import Repo

            with Repo(str(self.root)) as repo:
                current = {stage.addressing for stage in repo.index.stages}
                self._index(entries, current)
                if self.stage:
                    try:
                        self.up_to_date = not repo.status(targets=[self.stage])
                    except Exception:  # status unknown; the lock's provenance stands
                        self.up_to_date = None
        except Exception:  # not a DVC project, or one DVC cannot read: no provenance
            self._index(entries, set())

    def _index(self, entries: dict, current: set[str]) -> None:
        # dvc.lock keeps entries of stages since renamed; only the stages dvc.yaml defines today count
        self.entries = {name: entry for name, entry in entries.items() if name in current and isinstance(entry, dict)}
        self.producer = {out["path"]: name for name, entry in self.entries.items()
                         for out in entry.get("outs", []) if isinstance(out, dict) and "path" in out}  # fmt: skip
        self.stage = self.producer.get(self.path) if self.path else None

    def entry(self, stage: str | None = None) -> dict:
        return self.entries.get(stage or self.stage, {}) if (stage or self.stage) else {}

    def out_hash(self) -> str | None:
        for out in self.entry().get("outs", []):
            if out.get("path") == self.path:
                return out.get("md5")
        return None

    def params(self) -> dict:
        return {file: values for file, values in self.entry().get("params", {}).items()}

    def lineage(self) -> list[str]:
        """This stage and every stage upstream of it, nearest first."""
        seen, order, queue = set(), [], [self.stage] if self.stage else []
        while queue:
            stage = queue.pop(0)
            if stage in seen:
                continue
            seen.add(stage)
            order.append(stage)
            for dep in self.entry(stage).get("deps", []):
                upstream = self.producer_of(str(dep.get("path", "")))
                if upstream and upstream not in seen:
                    queue.append(upstream)
        return order

    def producer_of(self, path: str) -> str | None:
        """The stage whose output is `path` or holds it (a dep may be one file inside an output folder)."""
        for out, stage in self.producer.items():
            if path == out or path.startswith(out.rstrip("/") + "/"):
                return stage
        return None

    def datasets(self, stage: str) -> list[str]:
        """The prepared datasets a stage reads directly (data/prepared/<name>), and those the real_captions stage
        chose for stage 2 (its params entry `pretrain.real_datasets`: it depends on all of data/prepared)."""
        names = [dep["path"].split("/")[2] for dep in self.entry(stage).get("deps", [])
                 if dep.get("path", "").startswith("data/prepared/")]  # fmt: skip
        for values in self.entry(stage).get("params", {}).values():
            chosen = values.get(REAL_DATASETS_KEY) if isinstance(values, dict) else None
            names += [n for n in chosen or [] if isinstance(n, str)]
        return sorted(set(names))


def _value(entry: dict, keys: tuple[str, ...]):
    for key in keys:
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry if isinstance(entry, (int, float)) and not isinstance(entry, bool) else None


def _metric_name(keys: tuple[str, ...]) -> str:
    if keys[0] in ("text_to_audio", "audio_to_text"):
        return f"{keys[0].replace('_to_', '→').replace('_', ' ')} {keys[1]}"
    return keys[0] + (" (mean over seeds)" if keys[-1] == "mean" else "")


def _coverage(coverage: dict) -> tuple[str, dict]:
    """(split, {scored, listed, share, ids file, ids sha256}) of one dataset's coverage entry."""
    splits = coverage.get("splits", {}) if isinstance(coverage, dict) else {}
    split, counts = next(iter(splits.items()), ("", {}))
    scored, listed = counts.get("scored"), counts.get("listed")
    ids = coverage.get("ids", {}) if isinstance(coverage, dict) else {}
    share = round(scored / listed, 4) if isinstance(scored, int) and listed else None
    return split, {"clips_scored": scored, "clips_listed": listed, "coverage": share,
                   "ids_file": ids.get("file"), "ids_sha256": ids.get("sha256")}  # fmt: skip


def collect_results(metrics: Path, name: str) -> list[dict]:
    """Every (task, dataset) result this run's metrics JSONs hold for model `name`, with its coverage."""
    results = []
    for task in TASKS:
        path = metrics / f"evaluate_{task}.json"
        if not path.is_file():
            continue
        payload = json.loads(path.read_text(encoding="utf-8"))
        for dataset, models in sorted(payload.get(task, {}).items()):
            entry = models.get(name) if isinstance(models, dict) else None
            if not isinstance(entry, dict):
                continue
            values = [(keys, _value(entry, keys)) for keys in SHOWN[task]]
            values = [(keys, value) for keys, value in values if value is not None]
            split, coverage = _coverage(payload.get(f"{task}_coverage", {}).get(dataset, {}))
            std = {keys: _value(entry, (*keys[:-1], "std")) for keys, _ in values if keys[-1] == "mean"}
            results.append({"task": task, "dataset": dataset, "split": split, "values": values, "std": std,
                            "coverage": coverage, "file": path.name})  # fmt: skip
    return results


def _dataset_label(dataset: str, generated: set[str]) -> str:
    """The dataset's name, saying so when its metadata is make_demo's (`generated`, decided by content)."""
    return f"{dataset} (the synthetic demo corpus)" if dataset in generated else dataset


def _front_matter(name: str, results: list[dict], datasets: list[str], generated: set[str], labels: list[str],
                  license_id: str, head: dict | None = None) -> str:  # fmt: skip
    index = [_classifier_index(head, generated)] if head and head["test"] else []
    for result in results:
        if result["task"] not in FRONT_MATTER_TASKS:
            continue
        kind, title = TASKS[result["task"]]
        index.append({
            "task": {"type": kind, "name": title},
            "dataset": {"name": _dataset_label(result["dataset"], generated), "type": result["dataset"],
                        "split": result["split"] or "test", "args": result["coverage"]},
            "metrics": [{"type": "/".join(keys), "name": _metric_name(keys), "value": round(float(value), 4)}
                        for keys, value in result["values"]],
        })  # fmt: skip
    matter = {
        "license": license_id,
        "library_name": "blat-pipeline",
        "pipeline_tag": "audio-classification" if head else "zero-shot-audio-classification",
        "tags": sorted({"audio", "audio-text", "clap", "contrastive", "blat", "dvc", *labels,
                        *(["fine-tuned", "audio-classification"] if head else [])}),
        "datasets": datasets,
        "metrics": sorted({_metric_name(keys) for r in results if r["task"] in FRONT_MATTER_TASKS
                           for keys, _ in r["values"]} | set(head["test"] if head else ())),
        "model-index": [{"name": name, "results": index}],
    }  # fmt: skip
    return "---\n" + yaml.safe_dump(matter, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def kept_classifier(model: Path) -> dict | None:
    """The fine-tuned head beside `model` (classifier.json, written by the finetuned@<name> stage): {classes,
    multi_label, dataset, test scores, train/test clips, from}; None when there is none or it is unreadable."""
    from blat_core.models.checkpoints import CheckpointError, read_sidecar
    from blat_core.models.classifier import CLASSIFIER, has_classifier

    if not has_classifier(model):
        return None
    try:
        config, meta = read_sidecar(Path(model) / CLASSIFIER, kind="classifier")
    except CheckpointError:
        return None
    if not isinstance(config.get("classes"), list):
        return None
    test = meta.get("test") if isinstance(meta.get("test"), dict) else {}
    scores = {k: float(v) for k, v in test.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"classes": [str(c) for c in config["classes"]], "multi_label": bool(config.get("multi_label")),
            "dataset": str(config.get("dataset", "")), "from": meta.get("from"), "test": scores,
            "train_clips": meta.get("train_clips"), "test_clips": meta.get("test_clips")}  # fmt: skip


def _classifier_index(head: dict, generated: set[str]) -> dict:
    """The model-index entry of a kept head's held-out scores (properties of these very weights)."""
    return {
        "task": {"type": "audio-classification", "name": "Fine-tuned classifier (this folder's head)"},
        "dataset": {"name": _dataset_label(head["dataset"], generated), "type": head["dataset"], "split": "test",
                    "args": {"clips_scored": head["test_clips"], "train_clips": head["train_clips"],
                             "classes": len(head["classes"]), "multi_label": head["multi_label"]}},
        "metrics": [{"type": key, "name": key, "value": round(value, 4)}
                    for key, value in sorted(head["test"].items())],
    }  # fmt: skip


def _artifact(root: Path, path: str | None) -> tuple[str | None, str, list[str]]:
    """(artifact name, description, labels) of dvc.yaml's `artifacts:` entry for `path`."""
    artifacts = (_read_yaml(root / "dvc.yaml") or {}).get("artifacts", {}) or {}
    for artifact, entry in artifacts.items():
        if isinstance(entry, dict) and entry.get("path") == path:
            return artifact, str(entry.get("desc", "")), [str(label) for label in entry.get("labels", [])]
    return None, "", []


def _format(value: float, std: float | None) -> str:
    return f"{value:.4f}" if std is None else f"{value:.4f} ± {std:.4f}"


def build_card(model: Path, name: str, root: Path, metrics: Path, onnx: bool, license_id: str = "apache-2.0") -> str:
    """README.md for the export of the pipeline model folder `model` (named `name` in the metrics files)."""
    root = root.resolve()
    provenance = Provenance(root, model)
    params = _read_yaml(root / "params.yaml") or {}
    names = list(((params.get("prepare") or {}).get("datasets") or {}) if isinstance(params, dict) else [])
    generated = set(read_generated(root / SOURCES, root / DEMO_RECORD, names))
    artifact, description, labels = _artifact(root, provenance.path)
    lineage = provenance.lineage()
    datasets = sorted({d for stage in lineage for d in provenance.datasets(stage)})
    results = collect_results(metrics, name)
    head = kept_classifier(model)
    lines = [_front_matter(name, results, datasets, generated, labels, license_id, head),
             f"# BLAT bi-encoder `{name}`", ""]  # fmt: skip
    if description:
        lines += [description[:1].upper() + description[1:] + ".", ""]
    lines += ["An audio tower (CNN14) and a text tower (BERT family) projecting into one space; cosine similarity "
              "ranks captions for a clip and clips for a caption. Exported by `blat export` from this project's "
              "pipeline ([BLAT](https://arxiv.org/abs/2303.07902) reproduction).", "",
              "## How to load", "",
              "With this project's Python package installed (in a clone of the project: `scripts/setup_env.sh`, "
              "or `pip install -e .` into an environment with its `requirements.lock`):", "",
              "```python", "import blat_core", "",
              'model = blat_core.load_model("path/to/this/folder")   # no network, no code from the folder',
              'audio = model.embed_audio(["dog.wav"])                   # (1, E) float32, L2-normalised',
              'text = model.embed_text(["a dog barks", "rain on a roof"])',
              "scores = audio @ text.T", "```", "",
              "`embed_audio` also takes numpy waveforms with `sample_rate=`; any rate is resampled to the model's, "
              "clips longer than the window are the mean of fixed windows."]  # fmt: skip
    if onnx:
        lines += ["", "Outside PyTorch (`audio.onnx`, `text.onnx`, fp32, dynamic batch and length):", "", "```python",
                  "import onnxruntime as ort",
                  'audio = ort.InferenceSession("audio.onnx").run(None, {"waveform": wave, "lengths": lengths})[0]',
                  'text = ort.InferenceSession("text.onnx").run(None, {"input_ids": ids, "attention_mask": mask})[0]',
                  "```", "",
                  "`wave`: (B, T) float32 in [-1, 1] at the model's sample rate, zero-padded; `lengths`: (B,) int64 "
                  "valid samples; `ids`/`mask`: (B, L) int64 from the tokenizer files in this folder (at most "
                  "max_tokens). Each output row is L2-normalised. One window per row: cut clips longer than the "
                  "window yourself."]  # fmt: skip
    if head:
        kind = "single-label (softmax)"
        if head["multi_label"]:
            kind = "multi-label (sigmoid; every class at probability >= 0.5)"
        shown = ", ".join(f"{key} {value:.4f}" for key, value in sorted(head["test"].items())) or "not recorded"
        classes = ", ".join(f"`{c}`" for c in head["classes"][:20]) + (" ..." if len(head["classes"]) > 20 else "")
        lines += ["", "## Fine-tuned classifier", "",
                  f"This folder's audio tower was fine-tuned on `{head['dataset']}`"
                  + (f" from `{head['from']}`" if head["from"] else "") + "; `classifier.json` + "
                  "`classifier.safetensors` hold the head on the tower's clip embedding (before the projection): "
                  f"{len(head['classes'])} classes, {kind}: {classes}.", "",
                  f"- held-out scores ({head['test_clips']} clips of `{head['dataset']}`'s test split or fold, "
                  f"trained on {head['train_clips']}): {shown}",
                  "- `blat classify FILES --model path/to/this/folder` (without `--labels`) uses the head: the "
                  "class probabilities, averaged over 10-second windows; with `--labels` it classifies zero-shot",
                  "- in Python: `blat_core.models.classifier.load_classifier(folder).encode_audio(waveform)` gives "
                  "the probabilities; `blat_core.load_model` and the ONNX graphs are the bi-encoder's "
                  "(no head)"]  # fmt: skip
    lines += ["", "## Training data", ""]
    readers = [stage for stage in lineage if provenance.datasets(stage)]
    if readers:
        lines += ["This model's stage and the stages upstream of it (through dvc.lock) that read prepared datasets "
                  "(training data, and the validation split a stage selects on):", "",
                  "| stage | reads (prepared datasets) |", "|---|---|"]
        lines += [f"| `{stage}` | {', '.join(_dataset_label(d, generated) for d in provenance.datasets(stage))} |"
                  for stage in readers]  # fmt: skip
        lines += ["", "Each stage's splits and filters are in `params.yaml` and the project's docs "
                  "(docs/pipeline.md); the prepared sets' contents are in `metrics/prepare_<dataset>.json`."]
    else:
        lines += [f"Not known: `{model}` is not an output of a stage in {root}/dvc.yaml's lock."]
    revision = _git(root, "log", "-1", "--format=%H", "--", "dvc.lock")
    dirty = _git(root, "status", "--porcelain", "--", "dvc.lock", "params.yaml")
    stage_params = provenance.params()
    lines += ["", "## Provenance", ""]
    if provenance.stage:
        up_to_date = provenance.up_to_date
        lines += [f"- stage: `{provenance.stage}`" + (f"; DVC artifact `{artifact}`" if artifact else ""),
                  f"- model folder's DVC hash (dvc.lock): `{provenance.out_hash()}`",
                  f"- params digest (sha256 of the stage's params in dvc.lock, canonical JSON): "
                  f"`{_canonical_digest(stage_params)}`; of every stage upstream too: "
                  f"`{_canonical_digest({stage: provenance.entry(stage).get('params', {}) for stage in lineage})}`",
                  f"- dvc.lock revision: `{revision or 'not committed'}`"
                  + (" (dvc.lock or params.yaml modified since)" if dirty else ""),
                  f"- workspace matches dvc.lock for this stage (`dvc status {provenance.stage}`): "
                  + {True: "yes", False: "no — the folder is not what the lock describes", None: "unknown"}[up_to_date],
                  "", "<details><summary>The stage's params</summary>", "", "```yaml",
                  yaml.safe_dump(stage_params, sort_keys=True).strip(), "```", "", "</details>"]  # fmt: skip
    else:
        lines += [f"- not produced by a stage of this project's dvc.lock (`{model}`)"]
    lines += ["", "## Evaluation (this run)", ""]
    if not results:
        lines += [f"No metrics for `{name}` in {metrics}/evaluate_*.json."]
    for task in TASKS:
        rows = [r for r in results if r["task"] == task]
        if not rows:
            continue
        lines += [f"### {TASKS[task][1]}", "", "| dataset | split | metric | value | clips scored / listed |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            c = r["coverage"]
            covered = f"{c['clips_scored']} / {c['clips_listed']}" if c["clips_listed"] is not None else "—"
            for keys, value in r["values"]:
                std = r["std"].get(keys)
                lines.append(f"| {_dataset_label(r['dataset'], generated)} | {r['split']} | {_metric_name(keys)} | "
                             f"{_format(value, std)} | {covered} |")  # fmt: skip
        lines += ["", f"From `metrics/{rows[0]['file']}` (ids scored: `metrics/ids/{task}/`).", ""]
    return "\n".join(lines).rstrip() + "\n"
