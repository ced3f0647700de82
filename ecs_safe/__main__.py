"""``python -m ecs_safe``: the ``ecs-safe`` command line."""

from ecs_safe.cli import main

if __name__ == "__main__":
    main()
