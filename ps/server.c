/* Parameter server layer: shard store, consistency and checkpoints. */
