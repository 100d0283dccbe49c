-- outputs/train_fingerprint: content hashes of one split's train part (by original keys,
-- with weights), of the staged id space and of the warehouse instance, to recognise a model
-- trained on the same data.
with train as (
    select
        u.user_key,
        i.item_key,
        s.weight
    from split_interactions as s
    inner join users as u
        on u.dataset = s.dataset
       and u.user_id = s.user_id
    inner join items as i
        on i.dataset = s.dataset
       and i.item_id = s.item_id
    where s.dataset = $dataset
      and s.setting = $setting
      and s.split = 'train'
)
select
    (select count(*) from train) as train_rows,
    (select md5(coalesce(string_agg(user_key || chr(31) || item_key || chr(31) || cast(weight as varchar), chr(30)
                                    order by user_key, item_key, weight), '')) from train) as train_hash,
    (select md5(coalesce(string_agg(user_key, chr(30) order by user_id), ''))
       from users where dataset = $dataset) as users_hash,
    (select md5(coalesce(string_agg(item_key, chr(30) order by item_id), ''))
       from items where dataset = $dataset) as items_hash,
    (select min(instance_id) from warehouse_instance) as instance_id;
