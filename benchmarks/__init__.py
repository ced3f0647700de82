"""Benchmarks of ecs-safe against plain aiobotocore and against ECS's own rate limits.

Run them all with ``python -m benchmarks`` (``--quick`` for the smoke variant CI runs); see
docs/performance.md for what each one measures and the numbers it gave.
"""
