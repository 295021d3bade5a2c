"""Rerankers: the backends (cross-encoder, generative, listwise, FlagEmbedding), the zoo, weight resolution,
the inference engine and runtimes. ``factory.load_reranker`` builds any of them by name or path.

This package's ``__init__`` imports nothing, so that importing one of its light modules (the zoo catalogue at
registration time) does not pull the rest in."""
