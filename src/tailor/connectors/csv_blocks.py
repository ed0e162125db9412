"""Clean blocks of a CSV file parsed by Arrow, each row numbered by its line.

A block is a run of whole lines (about `BLOCK_BYTES`) read after the header. It is clean when
Arrow parses it into exactly one row per line with every value valid UTF-8: then the row at
position i is on line `first_line + i`. Blank lines, line breaks inside quoted values, rows with
the wrong number of fields and bytes that are not UTF-8 all make the row count differ or the
parse fail; the reader then stops at that block and says where it starts, so that the caller
reads the rest with a reader that reports each bad row's line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

BLOCK_BYTES = 16 << 20
"""Bytes of lines parsed at once (Arrow parses a block on both cores)."""


@dataclass(frozen=True)
class CleanBlock:
    """Rows of whole lines, all as text columns named by the header; row i is on line first_line + i."""

    table: pa.Table
    first_line: int
    start: int
    end: int
    """The byte offsets of the block's first line and just past its last."""


@dataclass(frozen=True)
class Unclean:
    """Where the first block that is not clean starts: its byte offset and line number."""

    offset: int
    line: int


def _parse(block: bytes, header: list[str]) -> pa.Table | None:
    """The block as a table of text columns, or None if it is not clean."""
    invalid: list[object] = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    names = [f"c{i}" for i in range(len(header))]  # the header may repeat a name
    try:
        table = pcsv.read_csv(
            io.BytesIO(block),
            read_options=pcsv.ReadOptions(column_names=names, block_size=len(block) + 1),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=False, ignore_empty_lines=True, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), check_utf8=True, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if invalid or table.num_rows != block.count(b"\n"):
        return None
    return table


def fast_csv_blocks(path: Path, header: list[str], offset: int, line: int) -> Iterator[CleanBlock | Unclean]:
    """Clean blocks from `offset` (line `line`) on; an Unclean, last, where one is not clean."""
    with path.open("rb") as f:
        f.seek(offset)
        carry = b""
        while True:
            data = carry + f.read(BLOCK_BYTES)
            if not data:
                return
            cut = data.rfind(b"\n")
            while cut < 0:  # a line longer than a block: read on to its end
                more = f.read(BLOCK_BYTES)
                if not more:
                    break
                data += more
                cut = data.rfind(b"\n")
            if cut < 0:
                block, carry = data + b"\n", b""  # the last line has no line break
            else:
                block, carry = data[: cut + 1], data[cut + 1 :]
            table = _parse(block, header)
            if table is None:
                yield Unclean(offset, line)
                return
            size = min(len(block), len(data))
            yield CleanBlock(table, line, offset, offset + size)
            offset += size
            line += block.count(b"\n")
