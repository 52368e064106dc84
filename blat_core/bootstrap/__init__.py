"""Bootstrapping — the step in the paper's title: the tagger's frame features of every clip a captioner
needs (`features.py`), then AudioSet's synthetic captions (`synthesis.py`: the tag filter, beam-3 captions
from the tag-guided captioner, their provenance). It runs models on data, so it sits above `models/`;
`data/` only reads what it writes (`data/features.py`, the captions Parquet through `data/pairs.py`)."""
