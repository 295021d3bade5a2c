"""Training rerankers: data construction, losses, miners, regimes, the trainer."""
