"""Load a customer table. The only stage that reads files."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import InputConfig
from .errors import InputError
from .resources import sample_path

DELIMITERS = [",", "\t", ";", "|"]
SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class Loaded:
    frame: pd.DataFrame
    path: Path
    name: str  # file name shown in the report
    sha256: str
    delimiter: str
    encoding: str


def _decode(raw: bytes, encoding: str | None, path: Path) -> tuple[str, str]:
    if encoding:
        try:
            return raw.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(
                f"cannot decode the file as {encoding} ({exc.__class__.__name__})",
                file=str(path),
                hint="set [input] encoding in the config",
            ) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are CP1252; it decodes almost any byte string,
        # so it is the last resort, not a guess.
        return raw.decode("cp1252", errors="replace"), "cp1252"


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields."""
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    # Same number of fields on every line, and the most of them: robust to quoted cells
    # that contain other delimiters, where csv.Sniffer guesses wrong.
    best, best_fields = "", 1
    for d in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=d)}
        if len(counts) == 1 and (n := counts.pop()) > best_fields:
            best, best_fields = d, n
    if best:
        return best
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def load(source: str | Path | None, cfg: InputConfig) -> Loaded:
    """Read SOURCE (None = the bundled sample) into a DataFrame of strings and numbers."""
    path = Path(source) if source is not None else sample_path()
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if path.is_dir():
        raise InputError("is a folder, not a file", file=str(path), hint="give the table's path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", file=str(path)) from None
    if not raw.strip():
        raise InputError("the file is empty", file=str(path))
    if b"\x00" in raw[:SNIFF_BYTES]:
        raise InputError(
            "the file is binary, not a delimited text table", file=str(path),
            hint="export it as CSV",
        )
    text, encoding = _decode(raw, cfg.encoding, path)
    delimiter = cfg.delimiter or sniff_delimiter(text[:SNIFF_BYTES])
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            engine="c",
            skipinitialspace=True,
            na_values=["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "-"],
            keep_default_na=False,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"cannot parse the table: {first}", file=str(path)) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file has no columns", file=str(path)) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[1] < 2:
        raise InputError(
            f"found a single column with delimiter {delimiter!r}",
            file=str(path),
            hint="set [input] delimiter in the config",
        )
    if frame.empty:
        raise InputError("the table has a header but no rows", file=str(path))
    return Loaded(
        frame=frame,
        path=path,
        name=path.name,
        sha256=hashlib.sha256(raw).hexdigest(),
        delimiter=delimiter,
        encoding=encoding,
    )
