"""The scrolling table the panels list things in (models, requests)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dearpygui.dearpygui as dpg


@contextmanager
def list_table(tag: str, columns: Sequence[tuple[str, float]], *, height: int, **options) -> Iterator[None]:
    """A table with a frozen header row, row stripes and stretching columns
    (label, weight); more columns may be added inside the block."""
    with dpg.table(
        tag=tag,
        header_row=True,
        row_background=True,
        borders_innerH=True,
        resizable=True,
        policy=dpg.mvTable_SizingStretchProp,
        scrollY=True,
        freeze_rows=1,
        height=height,
        **options,
    ):
        for label, weight in columns:
            dpg.add_table_column(label=label, init_width_or_weight=weight)
        yield
