-- outputs/frame_nulls: rows of the registered recommendations frame `_recommendations_frame` with a null key, rank or score.
select count(*)
from _recommendations_frame
where user_key is null or item_key is null or rank is null or score is null;
