-- raw/parse_delimited: split a headerless-or-one-header text file with a fixed separator
-- (ml-1m `::`, ml-100k tab, ml-latest `,`) into numbered lines of text fields.
-- Makes temp table ingest_fields; blank lines are dropped, line numbers are 1-based.
create or replace temp table ingest_fields as
with source as (
    select string_split(replace(replace(content, chr(13), ''), chr(65279), ''), chr(10)) as lines
    from read_text($path)
),
numbered as (
    select
        unnest(lines)                as raw_text,
        generate_subscripts(lines, 1) as line_no
    from source
),
split as (
    select
        line_no,
        raw_text,
        string_split(raw_text, $delimiter) as fields
    from numbered
    where trim(raw_text) <> ''
      and line_no > $header_lines
)
select
    line_no,
    raw_text,
    len(fields)      as n_fields,
    4                as expected_fields,
    trim(fields[1])  as user_text,
    trim(fields[2])  as item_text,
    trim(fields[3])  as rating_text,
    trim(fields[4])  as ts_text,
    true             as rating_required
from split;
