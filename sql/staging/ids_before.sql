-- staging/ids_before: the dataset's staged user and item ids before restaging (a temporary table of this
-- connection), to see whether restaging moves any key to another id (staging/moved_keys).
create or replace temp table staged_ids_before as
select 'user' as kind, user_key as key, user_id as id from users where dataset = $dataset
union all
select 'item' as kind, item_key as key, item_id as id from items where dataset = $dataset;
