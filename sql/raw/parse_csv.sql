-- raw/parse_csv: split a generic delimited file with a header (quoted fields allowed)
-- into numbered lines of text fields, picking the mapped columns by 1-based position
-- ($rating_idx = 0: no rating column). Makes temp table ingest_fields.
create or replace temp table ingest_fields as
with source as (
    select string_split(replace(replace(content, chr(13), ''), chr(65279), ''), chr(10)) as lines
    from read_text($path)
),
numbered as (
    select
        unnest(lines)                 as raw_text,
        generate_subscripts(lines, 1) as line_no
    from source
),
body as (
    select line_no, raw_text
    from numbered
    where trim(raw_text) <> ''
      and line_no > (select min(line_no) from numbered where trim(raw_text) <> '')
),
split as (
    select
        line_no,
        raw_text,
        list_transform(
            regexp_extract_all(raw_text, $pattern, 1),
            lambda f: case
                when len(f) >= 2 and starts_with(f, '"') and ends_with(f, '"') then replace(f[2:-2], '""', '"')
                else trim(f)
            end
        ) as fields
    from body
)
select
    line_no,
    raw_text,
    len(fields)        as n_fields,
    $n_columns         as expected_fields,
    fields[$user_idx]  as user_text,
    fields[$item_idx]  as item_text,
    case when $rating_idx > 0 then fields[$rating_idx] end as rating_text,
    fields[$ts_idx]    as ts_text,
    false              as rating_required
from split;
