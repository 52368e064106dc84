"""Transformers folders we did not make (text towers, FENSE's models) may ask to run their own Python.

Model folders travel through DVC remotes, and a folder whose config carries an `auto_map` names classes in
its own `.py` files, which transformers runs on load once trusted (its interactive prompt accepts a `y`).
Every loader in the library passes `trust_remote_code=False` (tests/test_untrusted_files.py checks each
call), and `refuse_custom_code` says clearly why such a folder is refused before transformers is asked.
"""

from __future__ import annotations

import json
from pathlib import Path


class CustomCodeError(ValueError):
    """A transformers folder that asks to run its own code."""


def refuse_custom_code(folder: str | Path) -> None:
    """Fail when `folder`'s config.json or tokenizer_config.json has an `auto_map` (or cannot be read)."""
    for name in ("config.json", "tokenizer_config.json"):
        path = Path(folder) / name
        try:
            fields = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError) as error:
            raise CustomCodeError(f"{path} is not a readable JSON file ({error})") from None
        if isinstance(fields, dict) and fields.get("auto_map"):
            raise CustomCodeError(
                f"{path} asks to run the folder's own Python code (auto_map: {sorted(fields['auto_map'])}); BLAT loads "
                "only standard transformers models: use a standard BERT folder, or remove auto_map if you have read "
                "and trust that code"
            )
