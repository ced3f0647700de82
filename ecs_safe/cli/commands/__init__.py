"""One module per ``ecs-safe`` command; `ecs_safe.cli` registers each on the app."""
