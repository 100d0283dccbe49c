-- staging/moved_keys: how many user/item keys staged before (staging/ids_before) now have another id or none.
-- Split rows hold ids, so when this is not 0 every split of the dataset points at the wrong users and items.
select count(*) as moved
from staged_ids_before as b
left join users as u
    on b.kind = 'user'
   and u.dataset = $dataset
   and u.user_key = b.key
left join items as i
    on b.kind = 'item'
   and i.dataset = $dataset
   and i.item_key = b.key
where coalesce(u.user_id, i.item_id) is distinct from b.id;
