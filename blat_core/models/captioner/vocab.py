"""Caption vocabulary: PTB-style tokens (lower case, punctuation stripped), every training word kept."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
MAX_TOKENS = 20
_PUNCTUATION = re.compile(r"[^\w\s']|_")


def tokenize(caption: str) -> list[str]:
    """'A dog barks, then a siren wails.' -> ['a', 'dog', 'barks', 'then', 'a', 'siren', 'wails']."""
    return [w.strip("'") for w in _PUNCTUATION.sub(" ", caption.lower()).split() if w.strip("'")]


class Vocabulary:
    """Word <-> id, with the four specials first (<pad> is 0)."""

    def __init__(self, words: list[str]):
        self.words = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: list[str]) -> Vocabulary:
        """Every word of the training captions, most frequent first (ties alphabetical)."""
        counts = Counter(w for c in captions for w in tokenize(c))
        return cls([w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))])

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad(self) -> int:
        return 0

    @property
    def start(self) -> int:
        return self.index[START]

    @property
    def end(self) -> int:
        return self.index[END]

    def encode(self, caption: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """<start> w1 .. wn <end>, at most `max_tokens` words; unknown words -> <unk>."""
        words = tokenize(caption)[:max_tokens]
        return [self.start] + [self.index.get(w, self.index[UNK]) for w in words] + [self.end]

    def decode(self, ids: list[int]) -> str:
        """Words up to the first <end>, specials dropped."""
        words = []
        for i in ids:
            if i == self.end:
                break
            if i not in (self.pad, self.start):
                words.append(self.words[i])
        return " ".join(words)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(json.loads(Path(path).read_text())["words"])
