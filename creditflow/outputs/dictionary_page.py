"""The data dictionary as a page: ``docs/data_dictionary.md``, rendered from the tables in
``creditflow.outputs.dictionary`` (the one definition; this only lays it out)."""

from __future__ import annotations

import re
from pathlib import Path

from creditflow.outputs.dictionary import TABLES, Table

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"

INTRO = """\
# Data dictionary: published tables

<!-- Generated from creditflow/outputs/dictionary.py (dictionary_page.render_markdown); do not edit by hand. Regenerate:
     .venv/bin/python -c "from creditflow.outputs.dictionary_page import write_markdown; write_markdown()" -->

The nightly pipeline publishes every table as Hive-partitioned, zstd-compressed Parquet,
one file per business date:

```
<published>/<table>/dt=YYYY-MM-DD/part-0.parquet
```

- `dt` is the business date (Asia/Shanghai). It lives in the path only: read with Hive
  partitioning and it comes back as a `DATE` column, last.
- A partition is swapped in whole (written in `<published>/.staging/`, then renamed): a reader
  sees the old complete file or the new complete one. Rerunning a date replaces that date's
  file and nothing else. Every row carries the `run_id` of the run that wrote it.
- Money is `DECIMAL(18,2)` CNY, never a float; dates are `DATE`; identifiers are text.
- Types below are as DuckDB names them when it reads the files; "contract" marks the columns
  `docs/contract.md` section 3 guarantees (others may be added, none removed or renamed
  without a version note).

## How to read

DuckDB (SQL, CLI or Python):

```sql
select * from read_parquet('<published>/limit_updates/dt=*/*.parquet',
                           hive_partitioning = true, hive_types = {'dt': DATE},
                           union_by_name = true)
where dt = date '2026-03-14';
```

Polars (`dt` comes back as `pl.Date`):

```python
import polars as pl
limits = pl.scan_parquet("<published>/limit_updates/", hive_partitioning=True)
limits.filter(pl.col("dt") == pl.date(2026, 3, 14)).collect()
```

pyarrow:

```python
import datetime
import pyarrow as pa, pyarrow.dataset as ds
limits = ds.dataset("<published>/limit_updates", format="parquet",
                    partitioning=ds.partitioning(pa.schema([("dt", pa.date32())]), flavor="hive"))
limits.to_table(filter=ds.field("dt") == pa.scalar(datetime.date(2026, 3, 14)))
```

### The BI catalog: `<published>/catalog.duckdb`

A small DuckDB file with one view per table (over the Parquet files, so it always shows the
latest partitions), a `tables` table with each table's grain and description, a
`table_columns` table with this dictionary, and column comments. It is separate from the
warehouse, so a BI tool can keep it open read-only while the nightly run writes.

The views hold paths **relative to the published folder**, so the folder can be moved, copied
or mounted anywhere; tell DuckDB where it is with the `file_search_path` setting (or start in
that folder). Without it a query fails with "No files found that match the pattern".

```sh
cd <published> && duckdb -readonly catalog.duckdb
# or from anywhere:
duckdb -readonly -cmd "SET file_search_path = '<published>'" <published>/catalog.duckdb
```

```sql
-- from an existing DuckDB session
ATTACH '<published>/catalog.duckdb' AS credit (READ_ONLY);
SET file_search_path = '<published>';
select * from credit.tables;
```

```python
con = duckdb.connect("<published>/catalog.duckdb", read_only=True)
con.execute("SET file_search_path = '<published>'")
# DuckDB 2.0 also takes it as a connection option (1.x clients refuse it there):
duckdb.connect("<published>/catalog.duckdb", read_only=True,
               config={"file_search_path": "<published>"})
# SQLAlchemy URL (duckdb_engine, e.g. Superset), <published> being an absolute path:
# duckdb:///<published>/catalog.duckdb?access_mode=read_only&file_search_path=<published>
```

The file is written in DuckDB's v1.0 storage format, so BI tools bundling DuckDB 1.x open
it too. `creditflow.outputs.bi_catalog.write_catalog(<published>)` rebuilds it (atomically, while
readers keep it open); new partitions and added columns need no rebuild, a table publishing
its first partition does (until then its view is empty, with the documented columns).

Notes for BI tools: `reason_codes` is a list of strings and `runs.input_files` a list of
structs (tools without nested types can `unnest` them or use `array_to_string`);
`runs.row_counts` and `runs.durations` are JSON text; `data_quality.check` must be quoted
(`"check"`); `runs` keeps every attempt of a date, the latest is the highest `attempt`.
"""


def _cell(text: str) -> str:
    # "<reason>" would be read as an HTML tag and vanish; "pd < 0.01" is left as it is
    text = re.sub(r"<(?=[A-Za-z/])", "&lt;", text)
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(table: Table) -> str:
    lines = [
        f"## {table.name}",
        "",
        table.description,
        "",
        f"- Grain: {table.grain}.",
        f"- Partitions: {table.partitions}.",
        f"- Defined in: {table.source}.",
        "",
        "| column | type | unit | contract | meaning | defined in |",
        "|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        lines.append(
            f"| `{c.name}` | `{_cell(c.type)}` | {_cell(c.unit)} | {'yes' if c.contract else ''} | {_cell(c.meaning)} | {_cell(c.defined_in)} |"
        )
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """The whole data dictionary page (deterministic: no dates or host paths in it)."""
    index = [
        "## Tables",
        "",
        "| table | grain | description |",
        "|---|---|---|",
        *[f"| [{t.name}](#{t.name}) | {_cell(t.grain)} | {_cell(t.description)} |" for t in TABLES],
        "",
    ]
    return "\n".join([INTRO, *index, *(render_table(t) for t in TABLES)])


def write_markdown(path: Path | None = None) -> Path:
    """Write ``render_markdown()`` to ``docs/data_dictionary.md`` (or ``path``)."""
    target = path or DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_markdown(), encoding="utf-8")
    return target
