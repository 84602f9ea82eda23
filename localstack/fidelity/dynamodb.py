"""DynamoDB waits: tables are CREATING before ACTIVE, DELETING before gone.

moto reports every table ACTIVE and forgets a deleted table at once. AWS
returns CREATING from CreateTable and DELETING from DeleteTable, and
DescribeTable keeps answering DELETING until the table is gone.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.exceptions import ResourceInUseException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


def _status(table: Any) -> str:
    return table.__dict__.get("_fintech_status", "ACTIVE")


@rule("dynamodb", "waiting")
def table_is_creating_then_active() -> None:
    """CreateTable returns TableStatus CREATING; it turns ACTIVE after the table
    create duration. DeleteTable on a CREATING table fails with
    ResourceInUseException, as AWS does."""

    @wrap(Table, "describe")
    def describe(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        for body in result.values():
            if isinstance(body, dict) and "TableStatus" in body:
                body["TableStatus"] = _status(self)
        return result

    @wrap(DynamoDBBackend, "create_table")
    def create_table(original: Any, self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        table = original(self, name, *args, **kwargs)
        table._fintech_status = "CREATING"

        def become_active() -> None:
            if _status(table) == "CREATING":
                table._fintech_status = "ACTIVE"

        TIMELINE.schedule(
            "dynamodb-table", table.name, "CREATING", "ACTIVE",
            scaled("dynamodb-table.create"), become_active,
        )
        return table


@rule("dynamodb", "waiting")
def table_is_deleting_then_gone() -> None:
    """DeleteTable returns TableStatus DELETING; DescribeTable shows DELETING for
    the table delete duration, then ResourceNotFoundException. Deleting it again
    meanwhile fails with ResourceInUseException."""

    @wrap(DynamoDBBackend, "delete_table")
    def delete_table(original: Any, self: Any, name: str) -> Any:
        current = self.tables.get(name)
        if current is not None and _status(current) in ("CREATING", "DELETING"):
            being = "created" if _status(current) == "CREATING" else "deleted"
            raise ResourceInUseException(
                f"Attempt to change a resource which is still in use: Table is being {being}: {name}"
            )
        table = original(self, name)  # moto pops it
        table._fintech_status = "DELETING"
        self.tables[table.name] = table
        TIMELINE.record("dynamodb-table", table.name, "ACTIVE", "DELETING")
        backend = self

        def gone() -> None:
            if backend.tables.get(table.name) is table:
                del backend.tables[table.name]

        TIMELINE.schedule(
            "dynamodb-table", table.name, "DELETING", "gone", scaled("dynamodb-table.delete"), gone
        )
        return table
