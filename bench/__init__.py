"""Benchmarks of the hub's paths against the raw RabbitMQ limit, measured side by side in one run."""
