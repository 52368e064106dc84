"""`blat doctor`: what this machine and this project's params have, and what each stage still needs.

Every check prints one line: `ok` (fine), `warn` (works, with a limit said), `FAIL` (a stage will stop).
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SECTIONS = {  # params section -> the strict dataclass its stages load it into
    "demo": "blat_core.data.demo.corpus:DemoParams",
    "prepare": "blat_core.data.prepare:PrepareParams",
    "audio_encoder": "blat_core.models.audio.encoder:AudioEncoderParams",
    "tagger": "blat_core.train.tagger:TaggerParams",
    "features": "blat_core.bootstrap.features:FeaturesParams",
    "captioner": "blat_core.train.captioner:CaptionerParams",
    "synthesize": "blat_core.bootstrap.synthesis:SynthesizeParams",
    "text_encoder": "blat_core.models.text.encoder:TextEncoderParams",
    "pretrain": "blat_core.train.pretrain:PretrainParams",
}
NEEDS = {  # what a stage needs beyond its inputs
    "captioner": "Java (caption metrics)",
    "table3": "Java (caption metrics)",
    "evaluate@captioning": "Java (caption metrics)",
    "tagger": "a GPU at paper scale (CPU is fine for the demo)",
    "pretrain@stage1": "GPUs at paper scale: BLAT_NPROC processes under torchrun",
    "pretrain@stage2": "GPUs at paper scale: BLAT_NPROC processes under torchrun",
    "pretrain@realonly": "GPUs at paper scale: BLAT_NPROC processes under torchrun",
}
MIN_FREE_GB = 10.0


class Report:
    def __init__(self):
        self.failures: list[str] = []

    def line(self, status: str, what: str, detail: str) -> None:
        if status == "FAIL":
            self.failures.append(what)
        print(f"{status:<5} {what:<28} {detail}")


def _cls(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def load_sections(params_file: Path, report: Report) -> dict:
    """Every section strictly (as its stages will); {section: dataclass or None}."""
    from blat_core.eval.tasks import TASKS
    from blat_core.params import ParamsError, from_dict, load_params_file

    try:
        raw = load_params_file(params_file)
    except ParamsError as error:
        report.line("FAIL", "params file", str(error))
        return {}
    loaded = {}
    for section, spec in SECTIONS.items():
        try:
            loaded[section] = from_dict(_cls(spec), raw.get(section), section)
        except ParamsError as error:
            loaded[section] = None
            report.line("FAIL", f"params: {section}", str(error))
    for task, data in raw.get("evaluate", {}).get("tasks", {}).items():
        try:
            loaded[f"evaluate.{task}"] = from_dict(TASKS[task].params, data, f"evaluate.tasks.{task}")
        except (ParamsError, KeyError) as error:
            report.line("FAIL", f"params: evaluate.tasks.{task}", str(error))
    for name, data in (raw.get("finetuned") or {}).items():  # the fine-tuned classifiers kept as models
        try:
            loaded[f"finetuned.{name}"] = from_dict(_cls("blat_core.train.finetuned:FinetunedParams"), data,
                                                    f"finetuned.{name}")  # fmt: skip
        except ParamsError as error:
            report.line("FAIL", f"params: finetuned.{name}", str(error))
    bad = [s for s in SECTIONS if loaded.get(s) is None]
    if not bad:
        report.line("ok", "params", f"{params_file}: every section and evaluate task loads strictly")
    return loaded


def check_environment(project: Path, report: Report) -> None:
    """torchaudio's compiled extension loads beside this torch, and the installed packages are the lock's."""
    from blat_core.app import environment

    problem = environment.torchaudio_problem()
    if problem:
        report.line("FAIL", "torchaudio", problem)
    else:
        version = environment.installed_version("torchaudio")
        report.line("ok", "torchaudio", f"{version}: extension loads, resample runs")
    lock = project / "requirements.lock"
    if lock.is_file():
        wanted = environment.pins_for_here(environment.read_lock(lock))
        differ = environment.differences(wanted, environment.installed_versions())
        if differ:
            report.line("warn", "packages", f"{len(differ)} differ from {lock.name}, e.g. {differ[0]} "
                        "(run scripts/setup_env.sh)")  # fmt: skip
        else:
            report.line("ok", "packages", f"{len(wanted)} exactly as {lock.name}")


def check_machine(project: Path, report: Report) -> None:
    import torch

    report.line("ok", "python / torch", f"Python {sys.version.split()[0]}, torch {torch.__version__}")
    check_environment(project, report)
    java = shutil.which("java")
    if java is None:
        report.line("FAIL", "java", "not on PATH: caption metrics (PTB tokenizer, METEOR, SPICE) need it "
                    "(sudo apt-get install default-jre-headless)")  # fmt: skip
    else:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        version = (result.stderr or result.stdout).splitlines()[0] if (result.stderr or result.stdout) else "?"
        report.line("ok", "java", f"{java}: {version}")
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        report.line("ok", "gpu", f"{len(names)} × {names[0]} ({memory:.0f} GiB); bf16 autocast on")
    else:
        report.line("warn", "gpu", "none: everything runs on the CPU (fine for the demo; paper scale needs GPUs)")
    free = shutil.disk_usage(project).free / 2**30
    report.line("ok" if free >= MIN_FREE_GB else "warn", "free disk", f"{free:.1f} GiB at {project.resolve()}"
                + ("" if free >= MIN_FREE_GB else f" (under {MIN_FREE_GB:.0f} GiB)"))  # fmt: skip


def check_inputs(loaded: dict, project: Path, report: Report) -> None:
    from blat_core.data.prepare import DEMO_ROOT
    from blat_core.models.text.encoder import resolve_folder

    prepare = loaded.get("prepare")
    demo_root = (project / DEMO_ROOT).resolve()  # make_demo's output folder: what it will write, not yet there
    for name, source in prepare.datasets.items() if prepare else []:
        meta, audio = project / source.meta_dir, project / source.audio_dir
        demo = meta.resolve().is_relative_to(demo_root)
        if meta.is_dir() and audio.is_dir():
            report.line("ok", f"dataset {name}", f"metadata {source.meta_dir}, audio {source.audio_dir}")
        elif demo:
            report.line("ok", f"dataset {name}", "demo corpus: `make_demo` writes it")
        else:
            missing = [str(p) for p in (meta, audio) if not p.is_dir()]
            report.line("FAIL", f"dataset {name}", f"missing {', '.join(missing)} (set prepare.datasets.{name})")
    tagger = loaded.get("tagger")
    if tagger and tagger.checkpoint:
        found = (project / tagger.checkpoint).is_file()
        report.line("ok" if found else "FAIL", "PANNs checkpoint", f"{tagger.checkpoint}"
                    + ("" if found else " not found (tagger.checkpoint)"))  # fmt: skip
    elif tagger:
        report.line("ok", "PANNs checkpoint", "none set: the tagger stage trains CNN14 itself")
    text = loaded.get("text_encoder")
    if text:
        try:
            folder = resolve_folder(text.folder)
            has_tokenizer = any((folder / n).is_file() for n in ("tokenizer.json", "vocab.txt"))
            status = "ok" if (folder / "config.json").is_file() and has_tokenizer else "FAIL"
            report.line(status, "text encoder", f"{folder}" + ("" if status == "ok" else ": needs config.json and "
                        "tokenizer files"))  # fmt: skip
        except (FileNotFoundError, ValueError, ImportError) as error:
            report.line("FAIL", "text encoder", str(error))
    captioner = loaded.get("captioner")
    if captioner:
        spice = "ok" if captioner.corenlp_dir and Path(captioner.corenlp_dir).is_dir() else "warn"
        report.line(spice, "SPICE / SPIDEr", captioner.corenlp_dir if spice == "ok" else
                    "captioner.corenlp_dir not set or missing: SPICE and SPIDEr are reported unavailable")  # fmt: skip
        fense = [captioner.fense_sbert_dir, captioner.fense_echecker, captioner.fense_echecker_encoder_dir]
        status = "ok" if all(fense) and all(Path(p).exists() for p in fense) else "warn"
        report.line(status, "FENSE", "local files set" if status == "ok" else
                    "captioner.fense_* not all set or present: FENSE is reported unavailable")  # fmt: skip


@contextlib.contextmanager
def pipeline_of(project: Path, params_file: Path):
    """(DVC repo, a function mapping its paths into `project`) of the project's dvc.yaml with its `${…}` values
    and `foreach` lists taken from `params_file`. DVC reads only the params.yaml beside dvc.yaml, so another file
    (params.paper.yaml, before it is copied over params.yaml) is given that name in a scratch copy of dvc.yaml."""
    from dvc.repo import Repo

    if params_file.resolve() == (project / "params.yaml").resolve():
        with Repo(str(project)) as repo:
            yield repo, lambda path: path
        return
    with tempfile.TemporaryDirectory(prefix="blat-doctor-") as scratch:
        view = Path(scratch).resolve()
        shutil.copyfile(project / "dvc.yaml", view / "dvc.yaml")
        shutil.copyfile(params_file, view / "params.yaml")
        (view / ".dvc").mkdir()  # a DVC project outside git, made without Repo.init (which logs to stdout)
        (view / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
        with Repo(str(view)) as repo:
            yield repo, lambda path: project.resolve() / path.relative_to(view) if path.is_relative_to(view) else path


def check_stages(project: Path, params_file: Path, report: Report) -> None:
    """Each stage `params_file` gives dvc.yaml: its inputs that no stage makes and that are missing, and what else
    it needs."""
    try:
        with pipeline_of(project, params_file) as (repo, here):
            stages = list(repo.index.stages)
            produced = {here(Path(out.fs_path).resolve()) for s in stages for out in s.outs}
            for stage in stages:
                absent = []
                for dep in stage.deps:
                    path = here(Path(dep.fs_path).resolve())
                    # A file inside an upstream stage's output folder (scan's data/sources/<ds>.json) is made too,
                    # and so is a folder holding upstream outputs (data/prepared, of every prepare@<dataset>).
                    made = (path in produced or any(parent in produced for parent in path.parents)
                            or any(path in out.parents for out in produced))  # fmt: skip
                    if not path.exists() and not made and not str(dep).startswith("params"):
                        absent.append(str(dep))
                name = getattr(stage, "name", None) or stage.addressing  # `addressing` adds dvc.yaml's path
                need = next((v for k, v in NEEDS.items() if name.startswith(k)), "")
                if absent:
                    report.line("FAIL", f"stage {name}", f"missing inputs: {', '.join(absent[:4])}")
                else:
                    report.line("ok", f"stage {name}", "inputs present or made upstream"
                                + (f"; needs {need}" if need else ""))  # fmt: skip
    except Exception as error:  # not a DVC project, or dvc.yaml does not parse with these params
        report.line("FAIL", "dvc pipeline", f"cannot read {project / 'dvc.yaml'} with {params_file.name}: {error}")


def run_checks(params_file: Path, project: Path) -> list[str]:
    """Print every check; returns the names of the failed ones."""
    report = Report()
    check_machine(project, report)
    if not params_file.is_absolute():
        params_file = project / params_file
    loaded = load_sections(params_file, report)
    check_inputs(loaded, project, report)
    if (project / "dvc.yaml").is_file():
        check_stages(project, params_file, report)
    print(f"\n{len(report.failures)} problem(s)" + (f": {', '.join(report.failures)}" if report.failures else ""))
    return report.failures
