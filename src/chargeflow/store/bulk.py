"""A fast path for the group writer's bulk statements on positional-parameter drivers (sqlite3).

SQLAlchemy's ``executemany`` builds a parameter dictionary per row through its compiled statement,
which costs more per row than SQLite takes to store it. Here each bulk statement is compiled once per
set of keys into its SQL text, the order of its parameters and each parameter's bind processor (the
public ``TypeEngine.bind_processor``: UTC conversion, SQLite's datetime format); rows then become
tuples handed straight to the driver. Other paramstyles use SQLAlchemy's own ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_POSITIONAL = ("qmark", "numeric")


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[tuple[str, Callable[[Any], Any] | None], ...]


class BulkWriter:
    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._fast = dialect.paramstyle in _POSITIONAL
        self._compiled: dict[tuple[Executable, tuple[str, ...]], _Compiled] = {}

    @property
    def compiled_statements(self) -> int:
        return len(self._compiled)

    def _compile(self, statement: Executable, keys: tuple[str, ...]) -> _Compiled | None:
        if not isinstance(statement, ClauseElement):
            return None
        compiled = statement.compile(dialect=self._dialect, column_keys=list(keys))
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            return None
        order = tuple(
            (name, compiled.binds[name].type.bind_processor(self._dialect)) for name in compiled.positiontup
        )
        if any(name not in keys for name, _ in order):
            return None
        return _Compiled(str(compiled), order)

    def execute(self, connection: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
        keys = tuple(rows[0])
        found = self._compiled.get((statement, keys)) if self._fast else None
        if found is None and self._fast:
            compiled = self._compile(statement, keys)
            if compiled is not None:
                self._compiled[(statement, keys)] = found = compiled
        if found is None or any(len(row) != len(keys) for row in rows):
            connection.execute(statement, rows)
            return
        order = found.order
        params = [tuple(p(row[n]) if p is not None else row[n] for n, p in order) for row in rows]
        connection.exec_driver_sql(found.sql, params)
