"""Stage `import_external`: the checkpoints named under `evaluate.external_models` (e.g. the authors' released
BLAT, blat_cnn14_bertm.pth) converted as `blat import-blat` converts them, one model folder each under
data/models/external/<name>/, which every evaluate@<task> then scores beside our own models (`external:<name>`).

The checkpoints live outside the pipeline, so the stage runs on every repro (`always_changed`, a few seconds per
checkpoint); an unchanged checkpoint gives byte-identical folders and no evaluation re-runs. With nothing
configured (the demo) it writes an empty folder, and the report's rows say "not configured".

DVC runs: python stages/import_external.py --out data/models/external --metrics metrics/import_external.json
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from blat_core.atomic import atomic_path, write_json
from blat_core.models.checkpoints import CheckpointError, file_digest
from blat_core.models.official import ExternalModel, import_official_blat
from blat_core.params import ParamsError, from_dict, load_params_file
from blat_core.runtime import run_main, setup_logging

log = logging.getLogger("import_external")


def load_external(params_file: Path) -> dict[str, ExternalModel]:
    section = load_params_file(params_file).get("evaluate", {}).get("external_models") or {}
    if not isinstance(section, dict):
        raise ParamsError("evaluate.external_models: expected a mapping of name -> {checkpoint, text_folder}")
    out = {}
    for name, entry in section.items():
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise ParamsError(f"evaluate.external_models.{name}: a name is letters, digits, '_' and '-' only "
                              "(it becomes a folder name)")  # fmt: skip
        out[str(name)] = from_dict(ExternalModel, entry, f"evaluate.external_models.{name}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    setup_logging()
    models = load_external(args.params)
    report = {}
    with atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        for name, entry in sorted(models.items()):
            where = f"evaluate.external_models.{name}"
            for key in ("checkpoint", "text_folder"):
                if not Path(getattr(entry, key)).exists():
                    raise SystemExit(f"{where}.{key}: {getattr(entry, key)} does not exist")
            try:
                dropped = import_official_blat(entry.checkpoint, entry.text_folder, tmp / name, entry.sample_rate,
                                               entry.max_tokens, entry.logit_scale_max)  # fmt: skip
            except CheckpointError as error:
                raise SystemExit(f"{where}: {error}") from None
            report[name] = {"checkpoint": Path(entry.checkpoint).name, "blake2b": file_digest(Path(entry.checkpoint)),
                            "dropped_keys": len(dropped)}  # fmt: skip
            log.info("%s: imported %s (%d keys dropped)", name, entry.checkpoint, len(dropped))
    write_json(args.metrics, {"import_external": {"configured": len(models), "models": report}})
    if not models:
        log.info("no evaluate.external_models configured: nothing imported")


if __name__ == "__main__":
    run_main(main)
