"""`blat mteb`: score a BLAT model folder with the MTEB harness (MAEB audio tasks); needs the Hugging Face hub
for the tasks' datasets, and datasets' audio decoding (torchcodec + FFmpeg) for their audio columns."""

from __future__ import annotations

from blat_core.app.cli.common import UsageError


def add_parser(add, audio_options) -> None:
    sub = add("mteb", run, "score a BLAT model folder with mteb (MAEB tasks; needs the Hugging Face hub)")
    sub.add_argument("model", help="an exported folder (`blat export`) or a pipeline model folder")
    sub.add_argument("--out", required=True, help="results folder (mteb's own layout)")
    chosen = sub.add_mutually_exclusive_group()
    chosen.add_argument("--tasks", nargs="+", help="mteb task names (default: AudioCaps and Clotho retrieval both "
                        "ways, ESC-50 and UrbanSound8K zero-shot)")  # fmt: skip
    chosen.add_argument("--benchmark", help='an mteb benchmark, e.g. "MAEB(v1)"')
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")


def run(args) -> None:
    import importlib.util

    from blat_core.app.cli.common import device_of
    from blat_core.app.mteb_model import evaluate, summary
    from blat_core.models.checkpoints import CheckpointError

    if importlib.util.find_spec("mteb") is None:
        raise UsageError("the mteb package is not installed: scripts/setup_env.sh installs it from the lock (or "
                         "`pip install 'blat-pipeline[mteb]'`)")  # fmt: skip

    try:
        results = evaluate(args.model, args.out, args.tasks, args.benchmark, str(device_of(args.device)))
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    except (ConnectionError, OSError) as error:  # datasets' ConnectionError, or the hub's offline-cache misses
        said = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise UsageError(f"a task's dataset could not be loaded ({said}): mteb downloads each task's data from the "
                         "Hugging Face hub; run this where huggingface.co is reachable, or with the datasets already "
                         "in the Hugging Face cache (HF_HOME) and HF_HUB_OFFLINE=1") from None  # fmt: skip
    except KeyError as error:  # mteb.get_tasks / get_benchmark on an unknown name
        raise UsageError(f"mteb knows no such task or benchmark: {error}") from None
    for task, value in summary(results):
        print(f"{task}\tmain score {value:.4f}")
    print(f"results in {args.out}")
