"""Write two datasets "of your own" to try docs/your-data.md without your own recordings: a captioned folder and a
labelled folder made from Debian's freedesktop sound theme (`apt-get install sound-theme-freedesktop`: 27 real
recordings, 0.06 to 6 s, 8 to 96 kHz). The same builders make the tests' datasets (tests/helpers/real_audio.py).

    python scripts/example_user_data.py ~/my_data    # writes ~/my_data/my_sounds/ and ~/my_data/my_labels/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import real_audio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write my_sounds/ and my_labels/ into (must not exist)")
    args = parser.parse_args()
    if not real_audio.available():
        raise SystemExit(f"no recordings in {real_audio.SOUNDS}: sudo apt-get install sound-theme-freedesktop")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new folder")
    captions = real_audio.build_user_captions(args.out / "my_sounds")
    labels = real_audio.build_user_labels(args.out / "my_labels")
    print(f"{args.out}/my_sounds: {captions['files']} recordings, {captions['rows_read']} caption rows (captions.csv)")
    print(f"{args.out}/my_labels: {labels['clips']} recordings, {len(labels['classes'])} labels (labels.tsv)")


if __name__ == "__main__":
    main()
