"""A run: the stream that reads, prepares, batches, runs and makes rows (stream), a run to a
catalogue file with checkpoints and --resume (to_file, lock, output_paths), shards and their
merge (sharding), and the distributed mode (distributed)."""
