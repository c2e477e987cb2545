"""The table schemas are the public contract: pin their basics."""

from __future__ import annotations

import pyarrow as pa

from playment_datasets.schema import TABLE_NAMES, TABLES, empty_tables


def test_every_table_of_the_design_exists() -> None:
    assert set(TABLE_NAMES) == {
        "jobs", "annotations", "points", "edges", "attributes",
        "cuboids_3d", "frames", "segments", "masks", "point_labels", "warnings", "errors",
    }


def test_every_table_carries_job_id_first() -> None:
    for name, schema in TABLES.items():
        assert schema.names[0] == "job_id", name
        assert schema.field("job_id").type == pa.string()


def test_coordinates_are_float64() -> None:
    for col in ("x_min", "y_min", "x_max", "y_max"):
        assert TABLES["annotations"].field(col).type == pa.float64()
    assert TABLES["points"].field("x").type == pa.float64()


def test_empty_tables_match_schemas() -> None:
    for name, table in empty_tables().items():
        assert table.num_rows == 0
        assert table.schema.equals(TABLES[name])
