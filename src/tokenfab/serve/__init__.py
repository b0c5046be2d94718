"""Serving: how an engine turns requests into steps (batching, KV capacity); costs come from `perf`."""
