"""A fast path for the group writer's bulk statements on positional-parameter drivers (sqlite3).

SQLAlchemy's ``executemany`` builds a parameter dictionary per row through its compiled statement,
which costs more per row than SQLite takes to store it. Here each bulk statement is compiled once per
set of keys into its SQL text, the order of its parameters and each parameter's bind processor (the
public ``TypeEngine.bind_processor``: UTC conversion, SQLite's datetime format); rows then become
tuples handed straight to the driver. Only the parameters that have a processor go through one, and
each processor sees each distinct value once per statement (the samples of one meter reading share
its timestamp). Other paramstyles use SQLAlchemy's own ``executemany``.

A plain INSERT goes to SQLite as multi-row ``INSERT … VALUES (…), (…)`` statements rather than an
``executemany``: the driver lets go of the GIL around every statement it steps, and the writer thread
then waits for the event loop's thread to hand it back, once per row. In row counts that are powers of
two, so that a handful of statement texts stay in the driver's cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

_POSITIONAL = ("qmark", "numeric")


Processor = Callable[[Any], Any]


MAX_ROWS_PER_STATEMENT = 64
MAX_VARIABLES = 999  # SQLite's smallest limit on the parameters of one statement


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[tuple[int, Processor], ...]  # (position, processor) of the parameters that have one
    values_at: int | None  # where ``VALUES (…)`` starts, for an INSERT that can take several rows
    _texts: dict[int, str] = field(default_factory=dict)

    def multi_row_sql(self, rows: int) -> str:
        text = self._texts.get(rows)
        if text is None:
            assert self.values_at is not None
            head, group = self.sql[: self.values_at], self.sql[self.values_at + len("VALUES ") :]
            text = self._texts[rows] = head + "VALUES " + ", ".join([group] * rows)
        return text

    def row_chunks(self, count: int) -> list[int]:
        """``count`` rows as statements of power-of-two sizes, largest first."""
        limit = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_VARIABLES // max(1, len(self.names))))
        sizes = []
        size = 1 << (limit.bit_length() - 1)
        while count:
            while size > count:
                size >>= 1
            sizes.append(size)
            count -= size
        return sizes

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


def _processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    # The dialect's own type: a TypeDecorator over DateTime asked directly would convert only its own
    # part and hand sqlite3 a datetime, which its default adapter writes without the microseconds that
    # SQLAlchemy's path writes (".000000"), so that text comparisons at a whole second went wrong.
    return type_.dialect_impl(dialect).bind_processor(dialect)


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
            if (process := _processor(compiled.binds[name].type, self._dialect)) is not None
        )
        sql = str(compiled)
        values_at = None
        if isinstance(statement, Insert) and not compiled.returning:
            at = sql.rfind(" VALUES (")
            if at > 0 and sql.endswith(")") and sql.count("?") == len(names):
                values_at = at + 1
        return _Compiled(sql, names, processors, values_at)

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
        parameters = found.parameters(rows)
        # Straight to the driver's cursor, inside the transaction the connection has begun: SQLAlchemy's
        # own execution path (events, result set-up) costs more than SQLite takes for a few rows.
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if found.values_at is None:
                cursor.executemany(found.sql, parameters)
                return
            start = 0
            for size in found.row_chunks(len(parameters)):
                chunk = parameters[start : start + size]
                start += size
                cursor.execute(found.multi_row_sql(size), tuple(value for row in chunk for value in row))
        finally:
            cursor.close()
