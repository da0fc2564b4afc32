"""Training a plan: the one training loop, its data stream's consumers, cost, distribution,
checkpoints, and the seed worker processes."""
