-- embeddings/get_embedding_run: one embedding run's record (none if absent).
select embedding_run, dataset, setting, model, config, train_fingerprint, n_items, dim, metrics
from embedding_runs
where embedding_run = $embedding_run;
