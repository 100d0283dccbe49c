-- raw/csv_header: the column names in the first non-blank line of a delimited file
-- ($pattern: regex for one field, quoted or not, after the line start or a separator).
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
first_line as (
    select raw_text
    from numbered
    where trim(raw_text) <> ''
    order by line_no
    limit 1
)
select
    list_transform(
        regexp_extract_all(raw_text, $pattern, 1),
        lambda f: case
            when len(f) >= 2 and starts_with(f, '"') and ends_with(f, '"') then replace(f[2:-2], '""', '"')
            else trim(f)
        end
    ) as columns
from first_line;
