-- staging/drop_ids_before: drop the temporary table of staging/ids_before.
drop table if exists staged_ids_before;
