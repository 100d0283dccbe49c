-- raw/typed: type the text fields of ingest_fields with try_cast and give each bad row
-- a reason. Timestamps: Unix seconds (integer or decimal) or ISO-8601 (offsets -> UTC).
-- $user_float / $item_float: the id came from a float column; whole numbers become integer
-- keys (1.0 -> '1', as in text files), nan and inf are rejected.
-- Makes temp table ingest_typed (reason is null for rows to load).
create or replace temp table ingest_typed as
with numbers as (
    select
        *,
        case when $user_float then try_cast(user_text as double) end as user_number,
        case when $item_float then try_cast(item_text as double) end as item_number
    from ingest_fields
),
typed as (
    select
        line_no,
        raw_text,
        n_fields,
        expected_fields,
        user_number,
        item_number,
        nullif(case
            when isfinite(user_number) and user_number = trunc(user_number) and abs(user_number) < 1e18
                then cast(cast(user_number as bigint) as varchar)
            else user_text
        end, '')                                          as user_key,
        nullif(case
            when isfinite(item_number) and item_number = trunc(item_number) and abs(item_number) < 1e18
                then cast(cast(item_number as bigint) as varchar)
            else item_text
        end, '')                                          as item_key,
        nullif(trim(rating_text), '')                     as rating_text,
        try_cast(nullif(trim(rating_text), '') as double) as rating,
        nullif(trim(ts_text), '')                         as ts_text,
        rating_required
    from numbers
),
epoch as (
    select
        *,
        case
            when regexp_full_match(ts_text, '-?[0-9]+(\.[0-9]*)?') then try_cast(ts_text as double)
        end as epoch_s
    from typed
),
parsed as (
    select
        *,
        case
            when epoch_s is not null and abs(epoch_s) < 1e11
                then make_timestamp(cast(round(epoch_s * 1000000) as bigint))
            when epoch_s is null
                then try_cast(try_cast(ts_text as timestamptz) at time zone 'UTC' as timestamp)
        end as ts
    from epoch
)
select
    line_no,
    raw_text,
    user_key,
    item_key,
    rating,
    ts,
    case
        when n_fields <> expected_fields
            then 'expected ' || expected_fields || ' fields, found ' || n_fields
        when user_key is null then 'missing user'
        when not isfinite(user_number) then 'non-finite user'
        when item_key is null then 'missing item'
        when not isfinite(item_number) then 'non-finite item'
        when rating_text is null and rating_required then 'missing rating'
        when rating_text is not null and rating is null then 'non-numeric rating'
        when rating is not null and not isfinite(rating) then 'non-finite rating'
        when ts_text is null then 'missing timestamp'
        when ts is null then 'unparseable timestamp'
    end as reason
from parsed;
