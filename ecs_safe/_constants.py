"""Every fixed number and name ecs-safe relies on, in one leaf module that imports nothing.

ECS's documented batch sizes, which operations count against which bucket, the defaults of the
public methods and of the CLI, and the values of the drain options. Every other module reads
them from here (the older public names elsewhere are aliases), so a default can change in one
place, and the CLI can show the real defaults without importing aiobotocore.

A test keeps this module a leaf: it imports nothing from the package, and nothing at all beyond
``typing``.
"""

from typing import Final, Literal

__all__ = [
    "ATTRIBUTES_BATCH",
    "AUTOSCALING_INSTANCES_BATCH",
    "AUTOSCALING_MUTATING_OPERATIONS",
    "CLUSTER_TASKS_MIN_INSTANCES",
    "CONTAINER_INSTANCE_STATUSES",
    "DEFAULT_CAPACITY_TIMEOUT",
    "DEFAULT_CLUSTER",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAXIMUM_PERCENT",
    "DEFAULT_MINIMUM_HEALTHY_PERCENT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_POLL_SHARE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_STEADY_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAVE_SIZE",
    "DEREGISTRATION_CHECKS",
    "DEREGISTRATION_CHECK_INTERVAL",
    "DESCRIBE_CAPACITY_PROVIDERS_BATCH",
    "DESCRIBE_EC2_INSTANCES_BATCH",
    "DESCRIBE_INSTANCES_BATCH",
    "DESCRIBE_SERVICES_BATCH",
    "DESCRIBE_TASKS_BATCH",
    "EC2_MUTATING_OPERATIONS",
    "ECS_MODIFY_OPERATIONS",
    "ECS_READ_OPERATIONS",
    "FINAL_LOOK_BUDGET",
    "HEARTBEAT_FRACTION",
    "HOLD_RETRY_INTERVAL",
    "LAMBDA_TIME_RESERVE",
    "LIFECYCLE_DETAIL_TYPE",
    "LIFECYCLE_HEARTBEAT_TIMEOUTS_LIMIT",
    "LIFECYCLE_MAX_GLOBAL_TIMEOUT",
    "LIFECYCLE_ON_FAILURE_VALUES",
    "LIST_PAGE_CAP",
    "MAX_POLL_INTERVAL",
    "MAX_POOL_CONNECTIONS",
    "MIN_POLL_INTERVAL",
    "MUTATING_OPERATIONS",
    "ON_TIMEOUT_VALUES",
    "OWNER_ATTRIBUTE",
    "OWNER_RELEASED_PREFIX",
    "POLL_BACKOFF",
    "REBALANCE_DETAIL_TYPE",
    "RECEIVE_BATCH",
    "SERVICE_BUCKETS",
    "SPOT_DEREGISTER_RESERVE",
    "SPOT_DETAIL_TYPE",
    "SPOT_NOTICE_SECONDS",
    "SQS_MODIFY_OPERATIONS",
    "STANDALONE_TASKS_VALUES",
    "TASK_EVENTS_BACKOFF",
    "TASK_EVENTS_POLL_FACTOR",
    "TASK_EVENTS_WAIT_SECONDS",
    "TASK_STATE_DETAIL_TYPE",
    "TERMINATING_TRANSITION",
    "TEST_NOTIFICATION_EVENT",
    "UPDATE_STATE_BATCH",
    "WORKER_CONCURRENCY",
    "WORKER_GRACE_PERIOD",
    "WORKER_LEDGER_KEYS",
    "WORKER_RECEIVE_BACKOFF",
    "WORKER_RETRY_DELAY",
    "WORKER_VISIBILITY_TIMEOUT",
    "WORKER_WAIT_SECONDS",
    "LifecycleOnFailure",
    "OnTimeout",
    "StandaloneTasks",
    "TerminationMethod",
]

# ----------------------------------------------------------------------------- ECS batch sizes

#: HTTP connections the client's aiobotocore client keeps per service; also the most requests
#: the rate limiter lets hold a token at once per service (`ecs_safe.ratelimit`), so that a
#: token is taken when a connection can send the request, not long before.
MAX_POOL_CONNECTIONS: Final = 64
#: DescribeContainerInstances takes at most 100 instances a call.
DESCRIBE_INSTANCES_BATCH: Final = 100
#: DescribeTasks takes at most 100 tasks a call.
DESCRIBE_TASKS_BATCH: Final = 100
#: DescribeServices takes at most 10 services a call.
DESCRIBE_SERVICES_BATCH: Final = 10
#: UpdateContainerInstancesState takes at most 10 instances a call.
UPDATE_STATE_BATCH: Final = 10
#: PutAttributes and DeleteAttributes take at most 10 attributes a call (one per instance here).
ATTRIBUTES_BATCH: Final = 10
#: DescribeCapacityProviders takes at most 100 capacity providers a call.
DESCRIBE_CAPACITY_PROVIDERS_BATCH: Final = 100
#: DescribeAutoScalingInstances takes at most 50 instance IDs a call.
AUTOSCALING_INSTANCES_BATCH: Final = 50
#: DescribeInstances (EC2) takes many IDs a call; 200 keeps a request small.
DESCRIBE_EC2_INSTANCES_BATCH: Final = 200
#: The most pages one paginated listing may take before it is an error (a server that repeats
#: or never ends its ``nextToken`` must not page forever). 10,000 pages of 100 is a million
#: items, past any real cluster.
LIST_PAGE_CAP: Final = 10_000
#: From how many instances that need their task lists one cluster-wide ListTasks (paginated,
#: then DescribeTasks 100 a call) is tried instead of a listing per instance (two ListTasks and
#: a DescribeTasks each). The cluster-wide listing gives up, and the instances are listed one
#: by one, once it would cost more requests than they would (benchmarks/plans.py measures
#: both; docs/performance.md).
CLUSTER_TASKS_MIN_INSTANCES: Final = 2

#: The statuses ListContainerInstances' ``status`` takes (a container instance's life cycle).
CONTAINER_INSTANCE_STATUSES: Final = (
    "ACTIVE",
    "DRAINING",
    "REGISTERING",
    "DEREGISTERING",
    "REGISTRATION_FAILED",
    "INACTIVE",
)

# ----------------------------------------------------------------------------- operations

#: The ECS operations that count against ECS's cluster-resource *modify* bucket.
ECS_MODIFY_OPERATIONS: Final = frozenset(
    {
        "DeregisterContainerInstance",
        "UpdateContainerInstancesState",
        "StopTask",
        "PutAttributes",
        "DeleteAttributes",
    }
)
#: The ECS operations that count against ECS's cluster-resource *read* bucket.
ECS_READ_OPERATIONS: Final = frozenset(
    {
        "DescribeContainerInstances",
        "DescribeTasks",
        "ListTasks",
        "DescribeServices",
        "ListContainerInstances",
        "ListClusters",
        "DescribeTaskDefinition",
        "DescribeCapacityProviders",
        "DescribeClusters",
    }
)
#: The EC2 Auto Scaling operations that change something.
AUTOSCALING_MUTATING_OPERATIONS: Final = frozenset(
    {
        "CompleteLifecycleAction",
        "RecordLifecycleActionHeartbeat",
        "TerminateInstanceInAutoScalingGroup",
        "SetDesiredCapacity",
        "UpdateAutoScalingGroup",
    }
)
#: The EC2 operations that change something.
EC2_MUTATING_OPERATIONS: Final = frozenset({"TerminateInstances"})
#: The SQS operations that count against SQS's *modify* bucket. They are not audited: deleting
#: a message or extending its visibility changes nothing in the fleet (the worker records each
#: event's outcome itself), and both are idempotent.
SQS_MODIFY_OPERATIONS: Final = frozenset(
    {"DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility", "SendMessage"}
)
#: Every operation, of any service, that changes something: each gets an audit ``intent``
#: record before its request is sent and an ``outcome`` record when it ends.
MUTATING_OPERATIONS: Final = (
    ECS_MODIFY_OPERATIONS | AUTOSCALING_MUTATING_OPERATIONS | EC2_MUTATING_OPERATIONS
)

# ----------------------------------------------------------------------------- rate limits

#: Token buckets (refill per second, burst) of the services other than ECS, per (service,
#: kind); ECS's own follow `ecs_safe.RateLimits`. EC2 meters non-mutating calls at 20/s with a
#: burst of 100 and mutating calls at 5/s with a burst of 200 (its documented defaults; some
#: calls, TerminateInstances among them, have a resource-rate limit on top). EC2 Auto Scaling
#: publishes no bucket sizes; it gets EC2's non-mutating shape for both kinds until measured.
#: SQS standard queues take "a nearly unlimited number" of calls a second per action; its
#: buckets only stop a runaway loop (a long poll holds a read for up to 20 s, so reads are few).
SERVICE_BUCKETS: Final[dict[tuple[str, str], tuple[float, int]]] = {
    ("ec2", "read"): (20.0, 100),
    ("ec2", "modify"): (5.0, 200),
    ("autoscaling", "read"): (20.0, 100),
    ("autoscaling", "modify"): (20.0, 100),
    ("sqs", "read"): (100.0, 300),
    ("sqs", "modify"): (100.0, 300),
}

# ----------------------------------------------------------------------------- defaults

#: ECS's defaults for a REPLICA service's deploymentConfiguration (in percent of desiredCount).
DEFAULT_MINIMUM_HEALTHY_PERCENT: Final = 100
DEFAULT_MAXIMUM_PERCENT: Final = 200
#: The cluster ECS assumes when a request names none.
DEFAULT_CLUSTER: Final = "default"
#: Seconds to wait for a TCP/TLS connection to the endpoint.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
#: Seconds to wait for a response once the request is sent.
DEFAULT_READ_TIMEOUT: Final = 30.0
#: Seconds a drain may take, counted from the moment the instance is DRAINING.
DEFAULT_TIMEOUT: Final = 600.0
#: The longest wait, in seconds, between two looks at a draining instance (``poll_interval``);
#: the drain poller looks more often when its read budget allows (`MIN_POLL_INTERVAL`).
DEFAULT_POLL_INTERVAL: Final = 5.0
#: The backoff factor of the per-instance polls before the drain poller; unused, kept for
#: existing callers (``ecs_safe.drain.POLL_BACKOFF``).
POLL_BACKOFF: Final = 1.5
#: The longest backoff wait before the drain poller; unused, kept for existing callers.
MAX_POLL_INTERVAL: Final = 30.0
#: The budget of a last look after the drain's deadline before the deadline bounded it too;
#: unused, kept for existing callers.
FINAL_LOOK_BUDGET: Final = 2.0
#: How many instances a fleet run works on at once (with ``drain=True``: how many are
#: DRAINING at once, which bounds the capacity a rolling run takes away).
DEFAULT_CONCURRENCY: Final = 10

#: Seconds the steady-state gate of a rolling drain waits, before each new drain, for the
#: services that lost tasks in earlier waves to be steady again (`ecs_safe.steady`).
DEFAULT_STEADY_TIMEOUT: Final = 600.0

# ----------------------------------------------------------------------------- replacement

#: Old instances a rolling replacement of an Auto Scaling group drains at once (`ecs_safe.replace`).
DEFAULT_WAVE_SIZE: Final = 1
#: Seconds a rolling replacement waits for its group to be back at capacity (the surge, or the
#: replacements of a wave, registered ACTIVE in the cluster) before it stops.
DEFAULT_CAPACITY_TIMEOUT: Final = 900.0

# ----------------------------------------------------------------------------- ownership

#: The custom container-instance attribute (PutAttributes) by which an ecs-safe run marks an
#: instance it set DRAINING as its own; its value is the run ID (`ecs_safe.ownership`).
OWNER_ATTRIBUTE: Final = "ecs-safe.drain-run"
#: The value prefix of a mark whose run has let go of the instance and left it DRAINING
#: (a drain that timed out with ``on_timeout="raise"``): any ecs-safe run may carry on with it.
OWNER_RELEASED_PREFIX: Final = "released:"

# ----------------------------------------------------------------------------- drain options

#: What `drain_and_deregister` does when tasks are left at the deadline.
OnTimeout = Literal["raise", "reactivate", "force"]
#: What `drain_and_deregister` does about tasks that no service manages.
StandaloneTasks = Literal["refuse", "wait", "stop"]
#: The values of `OnTimeout`, in the order the docs list them.
ON_TIMEOUT_VALUES: Final[tuple[OnTimeout, ...]] = ("raise", "reactivate", "force")
#: The values of `StandaloneTasks`, in the order the docs list them.
STANDALONE_TASKS_VALUES: Final[tuple[StandaloneTasks, ...]] = ("refuse", "wait", "stop")

# ----------------------------------------------------------------------------- the drain poller

#: The part of the client's read rate (`RateLimits.read_per_s`) the drain poller's rounds
#: spend: half, so that the pre-flights, the targets and other tools keep the rest.
DEFAULT_POLL_SHARE: Final = 0.5
#: The shortest time, in seconds, between two rounds of the drain poller when its budget would
#: allow more: one instance draining alone is looked at this often (a task that stopped is
#: seen, and the instance deregistered, within about this long). A drain whose
#: ``poll_interval`` is shorter lowers it to that.
MIN_POLL_INTERVAL: Final = 2.0
#: With a task-events queue (`ecs_safe._task_events`), the events say when to look, and the
#: rounds are a safety net: a quiet instance is looked at every this many ``poll_interval``
#: (30 s by default), the most a lost or late event can add to the lag.
TASK_EVENTS_POLL_FACTOR: Final = 6
#: ReceiveMessage's long-poll wait on the task-events queue (SQS's longest: the fewest receives).
TASK_EVENTS_WAIT_SECONDS: Final = 20
#: Seconds the task-events loop waits before receiving again after a receive failed (an
#: outage, throttling past the retries); the rounds meanwhile come as without events.
TASK_EVENTS_BACKOFF: Final = 5.0

# ----------------------------------------------------------------------------- termination

#: How an EC2 instance is terminated after its deregistration: through its Auto Scaling group
#: (TerminateInstanceInAutoScalingGroup) or directly (EC2 TerminateInstances).
TerminationMethod = Literal["auto-scaling", "ec2"]
#: How many describes may look at an instance ECS is still DEREGISTERING before its
#: termination is given up as unverified (`ecs_safe.termination`) ...
DEREGISTRATION_CHECKS: Final = 6
#: ... and the seconds between two of them.
DEREGISTRATION_CHECK_INTERVAL: Final = 5.0
# ----------------------------------------------------------------------------- the event worker

#: Seconds between a Spot Instance Interruption Warning and the instance's reclaim.
SPOT_NOTICE_SECONDS: Final = 120.0
#: Seconds of a Spot notice's two minutes kept for the deregistration after the wait: the
#: wait for the instance to empty ends this long before the notice does.
SPOT_DEREGISTER_RESERVE: Final = 10.0
#: ReceiveMessage's long-poll wait (SQS's longest, 20 s: the fewest empty receives).
WORKER_WAIT_SECONDS: Final = 20
#: Seconds a received message stays invisible to other workers; it is extended every third of
#: this while its event is in flight, so a worker that dies loses its messages for at most this.
WORKER_VISIBILITY_TIMEOUT: Final = 60
#: Events a worker handles at once (ReceiveMessage takes at most 10 a call).
WORKER_CONCURRENCY: Final = 10
#: ReceiveMessage returns at most 10 messages a call.
RECEIVE_BATCH: Final = 10
#: Seconds in-flight events may take to finish after a stop (SIGTERM) before their messages
#: are handed back (made visible again); under ECS's default 30 s stopTimeout.
WORKER_GRACE_PERIOD: Final = 25.0
#: Seconds a message whose event failed in a way worth retrying (an outage, throttling past
#: the retries) stays invisible before another receive may take it.
WORKER_RETRY_DELAY: Final = 30
#: Seconds a worker waits before receiving again after a receive failed (an outage).
WORKER_RECEIVE_BACKOFF: Final = 5.0
#: Event keys a worker remembers as handled (the oldest are forgotten first): duplicates
#: arrive within minutes; this bounds a long-running worker's memory.
WORKER_LEDGER_KEYS: Final = 100_000
#: Seconds of a Lambda invocation's remaining time kept back: an event not finished this
#: long before the limit is handed back (a batch item failure) instead of being cut.
LAMBDA_TIME_RESERVE: Final = 10.0

# ----------------------------------------------------------------------------- notices

#: EventBridge's detail-type of a terminate lifecycle action.
LIFECYCLE_DETAIL_TYPE: Final = "EC2 Instance-terminate Lifecycle Action"
#: ... of a Spot interruption warning (two minutes before the instance goes).
SPOT_DETAIL_TYPE: Final = "EC2 Spot Instance Interruption Warning"
#: ... of a rebalance recommendation (earlier, with no ECS notice at all).
REBALANCE_DETAIL_TYPE: Final = "EC2 Instance Rebalance Recommendation"
#: ... of an ECS task changing state (what wakes the drain poller, `ecs_safe._task_events`).
TASK_STATE_DETAIL_TYPE: Final = "ECS Task State Change"
#: The lifecycle transition of an instance leaving its Auto Scaling group.
TERMINATING_TRANSITION: Final = "autoscaling:EC2_INSTANCE_TERMINATING"
#: The ``Event`` of the notification Auto Scaling sends when a hook's target is set up.
TEST_NOTIFICATION_EVENT: Final = "autoscaling:TEST_NOTIFICATION"

# ----------------------------------------------------------------------------- lifecycle hooks

#: What the lifecycle-hook handler does when the drain cannot finish: keep the instance in
#: ``Terminating:Wait`` (heartbeats, retries) up to a deadline, or complete with CONTINUE.
LifecycleOnFailure = Literal["hold", "continue"]
#: The values of `LifecycleOnFailure`, in the order the docs list them.
LIFECYCLE_ON_FAILURE_VALUES: Final[tuple[LifecycleOnFailure, ...]] = ("hold", "continue")
#: The part of a hook's HeartbeatTimeout between two RecordLifecycleActionHeartbeat calls:
#: every third, so that a heartbeat that fails (after its retries) leaves two more chances
#: before the hook would time out.
HEARTBEAT_FRACTION: Final = 1 / 3
#: The longest wait, in seconds, between two drain attempts while a failed drain is held
#: (``on_failure="hold"``): someone who stops the blocking task sees the instance go soon.
HOLD_RETRY_INTERVAL: Final = 60.0
#: Auto Scaling's global limit of a lifecycle action: at most 48 hours ...
LIFECYCLE_MAX_GLOBAL_TIMEOUT: Final = 48 * 3600.0
#: ... and at most this many heartbeat timeouts.
LIFECYCLE_HEARTBEAT_TIMEOUTS_LIMIT: Final = 100
