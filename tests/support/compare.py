"""The oracle for "the rewind worked": two nodes hold the same data.

For every database and every permanent table (and materialized view) the row count
and an order-independent hash of the rows are compared. The hash is the sum of the
first 64 bits of each row's md5, so it does not depend on physical row order,
which legitimately differs between nodes only after a rewrite -- and then the
count and content still have to match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TABLES = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND n.nspname NOT LIKE 'pg_temp%%' AND (%s OR n.nspname <> 'pg_catalog')
ORDER BY 1, 2
"""

_ROWS = ("SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint"
         "::numeric), 0)::text FROM {} AS t")

# Catalogs whose content legitimately differs between a primary and its standby
# or is rewritten by activity that is not replicated.
_VOLATILE_CATALOGS = {"pg_statistic", "pg_statistic_ext_data"}


@dataclass
class Snapshot:
    databases: list[str]
    tables: dict[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)


@dataclass
class Comparison:
    left: Snapshot
    right: Snapshot

    @property
    def differences(self) -> list[str]:
        diffs = []
        if self.left.databases != self.right.databases:
            diffs.append(f"databases differ: {self.left.databases} vs {self.right.databases}")
        for key in sorted(set(self.left.tables) | set(self.right.tables)):
            a, b = self.left.tables.get(key), self.right.tables.get(key)
            if a != b:
                diffs.append(f"{'.'.join(key)}: {a} vs {b}")
        return diffs

    @property
    def equal(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        return "equal" if self.equal else "\n".join(self.differences)


def snapshot(node, catalogs: bool = False) -> Snapshot:
    """Row counts and content hashes of every table in every database of `node`."""
    snap = Snapshot([row[0] for row in node.sql("SELECT datname FROM pg_database ORDER BY 1")])
    for db in (row[0] for row in node.sql(
            "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")):
        conn = node.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(_TABLES % ("true" if catalogs else "false"))
                for schema, table in cur.fetchall():
                    if schema == "pg_catalog" and table in _VOLATILE_CATALOGS:
                        continue
                    cur.execute(_ROWS.format(_quote(schema) + "." + _quote(table)))
                    snap.tables[(db, schema, table)] = tuple(cur.fetchone())
        finally:
            conn.close()
    return snap


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def compare(left, right, catalogs: bool = False) -> Comparison:
    return Comparison(snapshot(left, catalogs), snapshot(right, catalogs))
