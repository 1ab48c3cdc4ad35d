"""Training: the train state, the pure step, ``fj.sweep`` (scan over steps, vmap over seeds), its result,
early stopping, checkpoints, the up-front memory estimate, sharding and the compile counter."""
