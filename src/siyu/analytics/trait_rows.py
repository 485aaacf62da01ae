"""Profile traits as rows the rules can compare: one per trait value, typed.

The store keeps each profile's current traits as one JSON object. The batch engine keeps them as
``profile_id, key, kind, text, number, time, flag``: strings in ``text``; numbers in ``number``;
booleans in ``flag``; strings that are dates or date-times also in ``time`` (naive UTC; a date
alone is midnight in the workspace's time zone), kind ``d``; a list's elements one row each, kind
``l``. Nested objects and nulls are left out. Every profile also gets one row with no key, so that
a profile whose traits were all removed replaces its old rows when it moves again.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

COLUMNS = ("profile_id", "key", "kind", "text", "number", "time", "flag")
SCHEMA = pa.schema(
    [
        pa.field("profile_id", pa.string()),
        pa.field("key", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("text", pa.string()),
        pa.field("number", pa.float64()),
        pa.field("time", pa.timestamp("us")),
        pa.field("flag", pa.bool_()),
    ]
)

_NUMBER = "('BIGINT', 'UBIGINT', 'DOUBLE')"
_FLATTEN = f"""
WITH pairs AS (
    SELECT p.id AS profile_id, e.key, e.type, e.value FROM profiles p, json_each(p.traits) e
), scalars AS (
    SELECT profile_id, key, type, value, false AS listed FROM pairs WHERE type <> 'ARRAY'
    UNION ALL
    SELECT p.profile_id, p.key, x.type, x.value, true FROM pairs p, json_each(p.value) x WHERE p.type = 'ARRAY'
), typed AS (
    SELECT profile_id, key, listed, type,
        CASE WHEN type = 'VARCHAR' THEN value ->> '$'
             WHEN listed AND type IN {_NUMBER} THEN value::VARCHAR END AS text,
        CASE WHEN NOT listed AND type IN {_NUMBER} THEN TRY_CAST(value AS DOUBLE) END AS number,
        CASE WHEN NOT listed AND type = 'BOOLEAN' THEN value::VARCHAR = 'true' END AS flag
    FROM scalars WHERE type IN ('VARCHAR', 'BOOLEAN', {_NUMBER[1:-1]})
), dated AS (
    SELECT *,
        CASE WHEN listed OR text IS NULL THEN NULL
             WHEN regexp_full_match(text, '\\d{{4}}-\\d{{2}}-\\d{{2}}')
                 THEN timezone('UTC', timezone($timezone, TRY_CAST(text AS DATE)::TIMESTAMP))
             WHEN regexp_matches(text, '^\\d{{4}}-\\d{{2}}-\\d{{2}}[T ]\\d')
                 THEN timezone('UTC', TRY_CAST(text AS TIMESTAMPTZ))
        END AS time
    FROM typed
)
SELECT profile_id, key,
    CASE WHEN listed THEN 'l' WHEN type = 'BOOLEAN' THEN 'b' WHEN number IS NOT NULL THEN 'n'
         WHEN time IS NOT NULL THEN 'd' ELSE 's' END AS kind,
    text, number, time, flag
FROM dated
UNION ALL
SELECT id, NULL, '', NULL, NULL, NULL, NULL FROM profiles
"""


def trait_rows(profiles: pa.Table, timezone: str) -> pa.Table:
    """``profiles`` (id, traits as JSON text) as trait rows."""
    con = duckdb.connect()
    try:
        con.register("profiles", profiles)
        return con.sql(_FLATTEN, params={"timezone": timezone}).to_arrow_table().cast(SCHEMA)
    finally:
        con.close()
