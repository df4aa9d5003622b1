"""Parquet, read in batches so large files stream."""

from __future__ import annotations

from pathlib import Path

from xuetu.data.readers import Item
from xuetu.errors import XuetuError


def read(path: Path):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise XuetuError(f"{path.name}: not a readable Parquet file ({e})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            yield Item(f"{path.name}:row {row}", obj)
