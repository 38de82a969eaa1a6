"""Lake -> warehouse: ``LakeToWarehouseOperator`` (one transaction: replace, append or upsert) and its check;
``BuildSummaryOperator`` (a summary table from a SELECT, checked before it is swapped in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from airflow.sdk import Context

from headwater.operators.base import HeadwaterOperator, logical_date_of
from headwater.operators.lineage import lake_table_dataset, warehouse_dataset

LOADS = ("replace", "append", "upsert")


class LakeToWarehouseOperator(HeadwaterOperator):
    """Load the parts a manifest lists into its table, atomically: the published table is never half-loaded.

    ``manifest_uri`` is templated; pass an upstream task's output (``export.output["manifest"]``).
    ``append`` tags rows with the logical date and replaces that batch on a rerun; ``upsert`` needs
    ``keys``, checked present, non-empty and unique in the staged rows. ``checks`` (the ``checks:`` items
    of the pipelines file, as dicts) run on the staged rows before publishing.
    """

    template_fields: Sequence[str] = ("manifest_uri", "keys", "warehouse_conn_id", "lake_url")
    loads = True  # the check below only reads

    def __init__(
        self,
        *,
        manifest_uri: Any,
        load: str = "replace",
        keys: Sequence[str] = (),
        checks: Sequence[Mapping[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from pydantic import ValidationError

        from headwater.checks import TableCheck
        from headwater.identifiers import validate_identifier

        self.manifest_uri = manifest_uri
        if load not in LOADS:
            raise self.argument_error("load", f"{load!r} is not one of {', '.join(LOADS)}")
        if load == "upsert" and not keys and self.loads:
            raise self.argument_error("keys", "load 'upsert' needs the key columns")
        if isinstance(keys, str):
            raise self.argument_error("keys", f"a list of column names, not the string {keys!r}")
        self.load = load
        self.keys = [self.check("keys", k, lambda v: validate_identifier(v, "key column")) for k in keys]
        try:
            self.table_checks = [TableCheck.model_validate(c) for c in checks]
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise self.argument_error("checks", problems) from None
        self.checks = [c.model_dump(exclude_none=True) for c in self.table_checks]

    def run(self, context: Context) -> dict[str, Any]:
        from headwater.errors import LakeError
        from headwater.identifiers import validate_identifier
        from headwater.parts import read_manifest
        from headwater.pipeline import batch_of
        from headwater.table_versions import record_load

        if not self.manifest_uri:
            raise LakeError(f"task {self.task_id!r}: no manifest URI (did the upstream export run?)")
        keys = [validate_identifier(k, "key column") for k in self.keys]
        lake = self.lake()
        manifest = read_manifest(lake, str(self.manifest_uri))
        warehouse = self.warehouse()
        batch = batch_of(logical_date_of(context)) if self.load == "append" else None
        result = warehouse.load(
            manifest,
            lake,
            self.load,
            keys,
            batch=batch,
            checks=self.table_checks,
            logical_date=logical_date_of(context),
        )
        self._inputs = [lake_table_dataset(lake.url, manifest.target, manifest.typed_columns)]
        output = warehouse_dataset(warehouse, manifest.target)
        output.columns, output.rows = manifest.typed_columns, result.rows
        self._outputs = [output]
        record = record_load(
            lake,
            self.warehouse_conn_id,
            manifest,
            self.load,
            logical_date=logical_date_of(context).isoformat(),
            run_id=context["run_id"],
            dag_id=self.dag_id,
        )
        self.log.info(
            "%s: version %s (%s)", manifest.target, record.version, "changed" if record.changed else "unchanged"
        )
        extra = {"rows": result.rows, "version": record.version, "changed": record.changed, "method": self.load}
        for outlet in self.outlets:  # the Asset event says what this load did
            context["outlet_events"][outlet].extra = extra
        return {**asdict(result), "table": manifest.target, **extra}


class RowCountCheckOperator(LakeToWarehouseOperator):
    """Check the published table's row count against the manifest the load used (a batch's, for append)."""

    ui_color = "#d5f5e3"
    loads = False

    def run(self, context: Context) -> dict[str, Any]:
        from headwater.parts import read_manifest
        from headwater.pipeline import check_row_count

        manifest = read_manifest(self.lake(), str(self.manifest_uri))
        warehouse = self.warehouse()
        count = check_row_count(warehouse, manifest, method=self.load, logical_date=logical_date_of(context))
        self._inputs = [warehouse_dataset(warehouse, manifest.target)]
        return {"table": manifest.target, "rows": count}


class BuildSummaryOperator(HeadwaterOperator):
    """Build a summary table from a SELECT: input checks, CTAS into staging, output checks, swap, grants.

    ``summary`` is one ``summaries:`` item of the pipelines file as a mapping (``table``, ``select``,
    ``input_checks``, ``keys``, ``checks``, ``grants``), validated when the DAG is parsed. The swap keeps
    the table, so views and grants on it survive; any failure leaves the previous summary in place.
    """

    template_fields: Sequence[str] = ("summary", "warehouse_conn_id")
    ui_color = "#e8daef"

    def __init__(self, *, summary: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summary = dict(summary)
        self._validated()

    def _validated(self) -> Any:
        from pydantic import ValidationError

        from headwater.transform.config import Summary

        try:
            return Summary.model_validate(self.summary)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise self.argument_error("summary", problems.replace("Value error, ", "")) from None

    def run(self, context: Context) -> dict[str, Any]:
        from headwater.warehouse.summary import build_summary

        summary = self._validated()  # again: templates may have changed it
        warehouse = self.warehouse()
        result = build_summary(warehouse, summary, logical_date_of(context))
        self._outputs = [warehouse_dataset(warehouse, summary.target)]
        return asdict(result)
