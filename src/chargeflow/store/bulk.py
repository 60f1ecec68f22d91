"""A fast path for the group writer's bulk statements on positional-parameter drivers (sqlite3).

SQLAlchemy's ``executemany`` builds a parameter dictionary per row through its compiled statement,
which costs more per row than SQLite takes to store it. Here each bulk statement is compiled once per
set of keys into its SQL text, the order of its parameters and each parameter's bind processor (the
public ``TypeEngine.bind_processor``: UTC conversion, SQLite's datetime format); rows then become
tuples handed straight to the driver. Only the parameters that have a processor go through one, and
each processor sees each distinct value once per statement (the samples of one meter reading share
its timestamp). Other paramstyles use SQLAlchemy's own ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

_POSITIONAL = ("qmark", "numeric")


Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[tuple[int, Processor], ...]  # (position, processor) of the parameters that have one

    def parameters(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        get = itemgetter(*self.names)
        plain = [(get(row),) for row in rows] if len(self.names) == 1 else [get(row) for row in rows]
        if not self.processors:
            return plain
        memos: list[dict[Any, Any]] = [{} for _ in self.processors]
        out = []
        for values in plain:
            converted = list(values)
            for (position, process), memo in zip(self.processors, memos, strict=True):
                value = converted[position]
                key = (value.__class__, value)  # 1, 1.0 and True are equal keys, but not the same value
                try:
                    converted[position] = memo[key]
                except KeyError:
                    converted[position] = memo[key] = process(value)
                except TypeError:  # unhashable (a JSON document): converted each time
                    converted[position] = process(value)
            out.append(tuple(converted))
        return out


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
        names = tuple(compiled.positiontup)
        if any(name not in keys for name in names):
            return None
        processors = tuple(
            (position, process)
            for position, name in enumerate(names)
            if (process := compiled.binds[name].type.bind_processor(self._dialect)) is not None
        )
        return _Compiled(str(compiled), names, processors)

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
        connection.exec_driver_sql(found.sql, found.parameters(rows))
