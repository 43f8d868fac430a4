"""Text corpora through the `datasets` library: a local UTF-8 file or a hub dataset, split by characters
(the last 10% is validation, as nanoGPT does with Tiny Shakespeare), tokenized once into the smallest
integer type that fits, and held in a memory-mapped file when a folder is given."""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UserError

CHUNK_ROWS = 20_000


def check_text_file(path: Path) -> None:
    """Refuse what is not a non-empty UTF-8 text file, reading it in chunks (no whole-file string)."""
    if not path.exists():
        raise UserError(f"text file not found: {path}")
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            if b"\x00" in block:
                raise UserError(f"{path} looks binary (it has NUL bytes), not UTF-8 text")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                raise UserError(f"{path} is not UTF-8 text (bad byte at offset {offset + e.start})") from None
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserError(f"{path} is not UTF-8 text (it ends inside a character)") from None


def load_rows(spec: str):
    """A `datasets.Dataset` of text rows from a local file or a hub dataset name."""
    import datasets
    import pyarrow

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(spec).expanduser()
    if path.exists() or path.suffix or spec.startswith((".", "/", "~")):
        check_text_file(path)
        # 1 MB reads keep the Arrow conversion's memory small (the default 10 MB triples it)
        rows = datasets.load_dataset("text", data_files=str(path), sample_by="line", keep_linebreaks=True,
                                     split="train", chunksize=1 << 20)
        pyarrow.default_memory_pool().release_unused()
        return rows
    try:
        ds = datasets.load_dataset(spec, split="train")
    except Exception as e:  # the hub raises many kinds; all mean the same to the user
        raise UserError(f"could not load hub dataset {spec!r} ({type(e).__name__}); offline? download the text "
                        f"and pass it as --data PATH.txt") from None
    columns = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if not columns:
        raise UserError(f"hub dataset {spec!r} has no text column")
    if columns[0] != "text":
        ds = ds.rename_column(columns[0], "text")
    if not _ends_rows_with_newline(ds):
        ds = ds.map(lambda b: {"text": [t + "\n" for t in b["text"]]}, batched=True)
    return ds.select_columns(["text"])


def _ends_rows_with_newline(ds) -> bool:
    first = ds[0]["text"] if len(ds) else ""
    return first.endswith("\n")


class TextCorpus:
    """A text split by characters: the first (1 - val_fraction) for training, the rest for validation."""

    def __init__(self, spec: str, val_fraction: float = 0.1):
        self.spec = spec
        self.rows = load_rows(spec)
        self.total = _total_chars(self.rows)
        self.cut = self.total - int(self.total * val_fraction)

    def bounds(self, split: str) -> tuple[int, int]:
        return {"train": (0, self.cut), "val": (self.cut, self.total), "all": (0, self.total)}[split]

    def chars(self, split: str) -> int:
        lo, hi = self.bounds(split)
        return hi - lo

    def text(self, split: str) -> Iterator[str]:
        """The split's text in chunks, in order, never as one string."""
        lo, hi = self.bounds(split)
        position = 0
        for batch in self.rows.iter(batch_size=CHUNK_ROWS):
            text = "".join(batch["text"])
            start, end = position, position + len(text)
            position = end
            if end <= lo:
                continue
            if start >= hi:
                break
            yield text[max(lo, start) - start: min(hi, end) - start]

    def encode(self, tokenizer, split: str, path: Path | None = None) -> np.ndarray:
        """Token ids of a split. With a path, ids are streamed to disk and memory-mapped back."""
        if path is None:
            parts = [tokenizer.encode(text) for text in self.text(split)]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        dtype = None
        with path.open("wb") as f:
            for text in self.text(split):
                ids = tokenizer.encode(text)
                dtype = ids.dtype
                ids.tofile(f)
        if dtype is None or path.stat().st_size == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(path, dtype=dtype, mode="r")


def _total_chars(rows) -> int:
    import pyarrow.compute as pc

    column = rows.data.column("text")
    return sum(int(pc.sum(pc.utf8_length(chunk)).as_py() or 0) for chunk in column.chunks)


TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def fetch_tiny_shakespeare(path: Path) -> None:
    """Download the canonical Tiny Shakespeare file to `path` (the default --data) on first use."""
    import urllib.request

    print(f"downloading Tiny Shakespeare to {path} ...")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(TINY_SHAKESPEARE_URL, timeout=20) as response:
            data = response.read()
    except OSError as e:
        raise UserError(f"could not download Tiny Shakespeare ({type(e).__name__}; offline?): save "
                        f"{TINY_SHAKESPEARE_URL} as {path}, or pass --data PATH.txt") from None
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
