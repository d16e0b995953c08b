"""TEMPORARY (lead's scaffold until the `fatebase` branch lands): the fate base in meta."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from campaign_dialer.store.model import Fate

_FIELDS = ("row", "person", "disposition", "reason", "detail", "next_open")


class FateBaseMeta:
    get_meta: Any
    set_meta: Any
    overlay_fates: Any
    drop_fate_rows: Any

    def set_fate_base(self, table: pa.Table, digest: str) -> None:
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema,
                            options=ipc.IpcWriteOptions(compression="zstd")) as w:
            w.write_table(table)
        self.set_meta("fate_base", base64.b64encode(sink.getvalue().to_pybytes()).decode())
        self.set_meta("fate_base_digest", digest)

    def fate_base_digest(self) -> str | None:
        return self.get_meta("fate_base_digest")

    def fate_base(self) -> pa.Table | None:
        raw = self.get_meta("fate_base")
        if not raw:
            return None
        return ipc.open_stream(pa.py_buffer(base64.b64decode(raw))).read_all()

    def drop_fates(self, rows: Iterable[int]) -> None:
        self.drop_fate_rows(list(rows))

    def fates(self) -> dict[int, Fate]:
        out: dict[int, Fate] = {}
        base = self.fate_base()
        if base is not None:
            cols = {n: base.column(n).to_pylist() for n in base.column_names}
            ev_keys = [n for n in base.column_names if n not in _FIELDS]
            for i, row in enumerate(cols["row"]):
                ev = {k: cols[k][i] for k in ev_keys if cols[k][i] is not None}
                out[row] = Fate(row, cols["person"][i], cols["disposition"][i],
                                cols["reason"][i], cols["detail"][i], cols["next_open"][i],
                                ev or None)
        out.update(self.overlay_fates())
        return dict(sorted(out.items()))

    def fate_counts(self) -> dict[tuple[str, str], int]:
        c: Counter[tuple[str, str]] = Counter(
            (f.disposition, f.reason or "") for f in self.fates().values())
        return dict(c)

    def fate_table(self) -> Any:
        raise NotImplementedError
