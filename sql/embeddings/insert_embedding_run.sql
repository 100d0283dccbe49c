-- embeddings/insert_embedding_run: record an embedding run.
insert into embedding_runs (embedding_run, dataset, setting, model, config, train_fingerprint, n_items, dim, metrics, created_at)
values ($embedding_run, $dataset, $setting, $model, cast($config as json), $train_fingerprint, $n_items, $dim,
        cast($metrics as json), cast($created_at as timestamp));
