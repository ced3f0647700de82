"""ecs-safe: take container instances out of an Amazon ECS cluster safely."""
