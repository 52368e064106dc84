"""The mteb wrapper, offline: the harness's own task classes (zero-shot classification and text-to-audio
retrieval, as MAEB's ESC50_Zeroshot and AudioCapsT2ARetrieval are) over a small in-memory dataset of real
recordings at several sample rates. The harness's scores must equal what the model's own embeddings give,
so the wrapper hands every row to the right tower and keeps the order."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import blat_core
from tests.helpers import real_audio
from tests.helpers.tiny_models import make_models

mteb = pytest.importorskip("mteb")


def _tasks(audio: list[dict], labels: list[int], candidates: list[str], queries: list[str], relevant: dict):
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.abstasks.zeroshot_classification import AbsTaskZeroShotClassification

    general = dict(description="a tiny local task", reference="https://github.com/embeddings-benchmark/mteb",
                   dataset={"path": "local", "revision": "local"}, eval_splits=["test"], eval_langs=["eng-Latn"],
                   date=("2024-01-01", "2024-01-01"), dialect=[], domains=[], task_subtypes=[], license="cc-by-4.0",
                   annotations_creators="derived", modalities=["audio", "text"], sample_creation="found",
                   bibtex_citation="")  # fmt: skip

    class TinyZeroshot(AbsTaskZeroShotClassification):
        input_column_name = "audio"
        metadata = TaskMetadata(type="AudioZeroshotClassification", name="TinyZeroshot", main_score="accuracy",
                                category="a2t", **general)  # fmt: skip

        def load_data(self, **kwargs):
            self.dataset = DatasetDict({"test": Dataset.from_dict({"audio": audio, "label": labels})})
            self.data_loaded = True

        def get_candidate_labels(self):
            return candidates

    class TinyT2A(AbsTaskRetrieval):
        metadata = TaskMetadata(type="Any2AnyRetrieval", name="TinyT2ARetrieval", main_score="ndcg_at_10",
                                category="t2a", **general)  # fmt: skip

        def load_data(self, **kwargs):
            self.queries = DatasetDict({"test": Dataset.from_dict(
                {"id": [f"q{i}" for i in range(len(queries))], "text": queries, "modality": ["text"] * len(queries)})})
            self.corpus = DatasetDict({"test": Dataset.from_dict(
                {"id": [f"d{i}" for i in range(len(audio))], "audio": audio, "modality": ["audio"] * len(audio)})})
            self.relevant_docs = {"test": relevant}
            self.data_loaded = True

    return TinyZeroshot(), TinyT2A()


def test_mteb_scores_a_blat_folder_as_its_own_embeddings_do(tmp_path):
    from blat_core.app.mteb_model import evaluate, summary

    real_audio.require()
    make_models(tmp_path)
    folder = tmp_path / "blat"
    audio = []
    for path in real_audio.recordings()[:6]:  # 44.1 and 48 kHz, mono and stereo: the wrapper resamples and mixes
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
        audio.append({"array": samples.mean(axis=1), "sampling_rate": rate})
    labels = [0, 1, 2, 0, 1, 2]
    candidates = ["a bell rings", "a door opens", "a message alert"]
    queries = ["a bell rings", "a camera shutter", "an alarm"]
    relevant = {"q0": {"d0": 1}, "q1": {"d2": 1}, "q2": {"d4": 1}}
    results = evaluate(folder, tmp_path / "results", tasks=list(_tasks(audio, labels, candidates, queries, relevant)))
    scores = {r.task_name: r.scores["test"][0] for r in results.task_results}
    assert set(scores) == {"TinyZeroshot", "TinyT2ARetrieval"} and len(summary(results)) == 2
    # The same numbers from the model's own embeddings.
    model = blat_core.load_model(folder)
    clips = np.stack([model.embed_audio([a["array"]], sample_rate=a["sampling_rate"])[0] for a in audio])
    predicted = (clips @ model.embed_text(candidates).T).argmax(axis=1)
    assert scores["TinyZeroshot"]["accuracy"] == pytest.approx(float(np.mean(predicted == np.array(labels))), abs=1e-5)
    top = (model.embed_text(queries) @ clips.T).argmax(axis=1)
    hits = [f"d{top[i]}" in relevant[f"q{i}"] for i in range(len(queries))]
    assert scores["TinyT2ARetrieval"]["recall_at_1"] == pytest.approx(float(np.mean(hits)), abs=1e-5)  # mteb: 5 places
    assert list((tmp_path / "results").rglob("TinyT2ARetrieval.json"))  # mteb's own results layout


def test_blat_mteb_without_the_hub_says_so_in_one_line(tmp_path):
    """The hub is unreachable here: `blat mteb` on a real MAEB task fails with exit 2 and one line saying why and
    where it can run; an unknown task name is one line too."""
    import os
    import subprocess
    import sys

    make_models(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    for task, said in (("ESC50_Zeroshot", "could not be loaded"), ("NoSuchTask", "no such task")):
        done = subprocess.run([sys.executable, "-m", "blat_core.app.cli", "mteb", str(tmp_path / "blat"), "--out",
                               str(tmp_path / "results"), "--tasks", task], capture_output=True, text=True, env=env,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("blat mteb: error:") and said in last and "Traceback" not in done.stderr
