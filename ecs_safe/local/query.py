"""The ECS cluster query language, the part of it operators use, as LocalEcs evaluates it.

moto ignores ListContainerInstances's ``filter``; LocalEcs parses it here with a small
recursive-descent parser (no ``eval``) and evaluates it against each container instance.
The grammar follows the AWS documentation ("Cluster query language", Amazon ECS Developer
Guide)::

    expression := or_expr
    or_expr    := and_expr { ("or" | "||") and_expr }
    and_expr   := not_expr { ("and" | "&&") not_expr }
    not_expr   := ("not" | "!") not_expr | primary
    primary    := "(" expression ")" | condition
    condition  := subject operator [argument]
    subject    := "attribute:" NAME | "ec2InstanceId" | "agentConnected"
                | "runningTasksCount" | "registeredAt"
    operator   := "==" | "equals" | "!=" | "not_equals" | ">" | "greater_than"
                | ">=" | "greater_than_equal" | "<" | "less_than" | "<=" | "less_than_equal"
                | "exists" | "!exists" | "not_exists" | "in" | "not_in"
    argument   := VALUE | "[" VALUE { "," VALUE } "]"

``not`` binds tighter than ``and``, which binds tighter than ``or``. What it does not support
(``agentVersion``, ``task:group``, ``=~``/``matches``, an operator a subject does not take, a
value of the wrong kind) is a `QueryError`, which LocalEcs answers as ECS's
InvalidParameterException.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

__all__ = ["And", "Condition", "InstanceFacts", "Not", "Or", "Query", "QueryError", "parse"]


_Ordered = TypeVar("_Ordered", int, bool, datetime)


class QueryError(ValueError):
    """A filter that LocalEcs cannot parse or does not support."""


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    """What a filter can ask about one container instance."""

    attributes: Mapping[str, str | None]
    """The instance's attributes, built-in (``ecs.instance-type``, ...) and custom."""
    ec2_instance_id: str
    """The EC2 instance ID (``i-...``)."""
    agent_connected: bool
    """Whether the ECS agent is connected."""
    running_tasks_count: int
    """Tasks in RUNNING on the instance."""
    registered_at: datetime
    """When the instance registered (UTC)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``subject operator [argument]``: one test of one fact."""

    subject: str
    """One of attribute, ec2InstanceId, agentConnected, runningTasksCount, registeredAt."""
    name: str | None
    """The attribute's name, for ``attribute:NAME``."""
    operator: str
    """The canonical operator: a comparison, ``exists``, ``!exists``, ``in`` or ``!in``."""
    values: tuple[str, ...]
    """The argument (none for ``exists``, several for ``in``)."""

    def matches(self, facts: InstanceFacts) -> bool:
        """Whether the instance satisfies this condition."""
        if self.subject == "attribute":
            return _attribute_matches(self, facts.attributes)
        if self.subject == "ec2InstanceId":
            return _compare_set(self.operator, facts.ec2_instance_id, self.values)
        if self.subject == "agentConnected":
            return _compare(self.operator, facts.agent_connected, _boolean(self.values[0]))
        if self.subject == "runningTasksCount":
            return _compare(self.operator, facts.running_tasks_count, _integer(self.values[0]))
        return _compare(self.operator, _aware(facts.registered_at), _date(self.values[0]))


@dataclass(frozen=True, slots=True)
class Not:
    """``not EXPR``."""

    operand: Query
    """The negated expression."""

    def matches(self, facts: InstanceFacts) -> bool:
        """Whether the operand does not match."""
        return not self.operand.matches(facts)


@dataclass(frozen=True, slots=True)
class And:
    """``EXPR and EXPR``."""

    left: Query
    """The left operand."""
    right: Query
    """The right operand."""

    def matches(self, facts: InstanceFacts) -> bool:
        """Whether both operands match."""
        return self.left.matches(facts) and self.right.matches(facts)


@dataclass(frozen=True, slots=True)
class Or:
    """``EXPR or EXPR``."""

    left: Query
    """The left operand."""
    right: Query
    """The right operand."""

    def matches(self, facts: InstanceFacts) -> bool:
        """Whether either operand matches."""
        return self.left.matches(facts) or self.right.matches(facts)


#: A parsed filter.
Query = Condition | Not | And | Or

# Spelled-out operators and their symbols, as the AWS documentation lists them.
_OPERATORS: Final = {
    "==": "==",
    "equals": "==",
    "!=": "!=",
    "not_equals": "!=",
    ">": ">",
    "greater_than": ">",
    ">=": ">=",
    "greater_than_equal": ">=",
    "<": "<",
    "less_than": "<",
    "<=": "<=",
    "less_than_equal": "<=",
    "exists": "exists",
    "not_exists": "!exists",
    "in": "in",
    "not_in": "!in",
}
_UNSUPPORTED_OPERATORS: Final = frozenset({"=~", "!~", "matches", "not_matches"})
_ORDERING: Final = frozenset({"==", "!=", ">", ">=", "<", "<="})
# Which operators each subject takes.
_SUBJECT_OPERATORS: Final = {
    "attribute": frozenset({"==", "!=", "exists", "!exists", "in", "!in"}),
    "ec2InstanceId": frozenset({"==", "!=", "in", "!in"}),
    "agentConnected": frozenset({"==", "!="}),
    "runningTasksCount": _ORDERING,
    "registeredAt": _ORDERING,
}
_UNSUPPORTED_SUBJECTS: Final = frozenset({"agentVersion", "task:group", "pendingTasksCount"})
_TOKEN: Final = re.compile(
    r"\s*(?:(?P<symbol>==|!=|>=|<=|=~|!~|&&|\|\||[><!()\[\],])|(?P<word>[^\s()\[\],=!<>&|]+))"
)
# A filter longer than ECS allows is refused before parsing.
_MAX_LENGTH: Final = 1024


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].isspace():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            msg = f"cannot read the filter at position {position}: {text[position:]!r}"
            raise QueryError(msg)
        tokens.append(match.group("symbol") or match.group("word"))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._at = 0

    def parse(self) -> Query:
        if not self._tokens:
            msg = "the filter is empty"
            raise QueryError(msg)
        query = self._or()
        if self._at < len(self._tokens):
            msg = f"unexpected {self._tokens[self._at]!r} after a complete expression"
            raise QueryError(msg)
        return query

    def _peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _next(self, expected: str) -> str:
        token = self._peek()
        if token is None:
            msg = f"the filter ends where {expected} was expected"
            raise QueryError(msg)
        self._at += 1
        return token

    def _keyword(self, *words: str) -> bool:
        token = self._peek()
        if token is not None and token.lower() in words:
            self._at += 1
            return True
        return False

    def _or(self) -> Query:
        query = self._and()
        while self._keyword("or", "||"):
            query = Or(query, self._and())
        return query

    def _and(self) -> Query:
        query = self._not()
        while self._keyword("and", "&&"):
            query = And(query, self._not())
        return query

    def _not(self) -> Query:
        if self._keyword("not", "!"):
            return Not(self._not())
        return self._primary()

    def _primary(self) -> Query:
        if self._keyword("("):
            query = self._or()
            if self._next("')'") != ")":
                msg = "a '(' is not closed"
                raise QueryError(msg)
            return query
        return self._condition()

    def _condition(self) -> Query:
        subject_token = self._next("a subject")
        subject, name = _subject(subject_token)
        operator = self._operator()
        if operator not in _SUBJECT_OPERATORS[subject]:
            msg = f"{subject_token} does not take the operator {operator!r} in LocalEcs"
            raise QueryError(msg)
        if operator in {"exists", "!exists"}:
            values: tuple[str, ...] = ()
        elif operator in {"in", "!in"}:
            values = self._list()
        else:
            values = (self._value(),)
        condition = Condition(subject, name, operator, values)
        _check_values(condition)
        return condition

    def _operator(self) -> str:
        token = self._next("an operator")
        if token == "!" and self._keyword("exists"):  # noqa: S105  (a symbol, not a secret)
            return "!exists"
        operator = _OPERATORS.get(token.lower() if token.isalpha() or "_" in token else token)
        if operator is None:
            hint = " (not supported by LocalEcs)" if token.lower() in _UNSUPPORTED_OPERATORS else ""
            msg = f"{token!r} is not an operator{hint}"
            raise QueryError(msg)
        return operator

    def _value(self) -> str:
        token = self._next("a value")
        if token in {"(", ")", "[", "]", ","} or token in _OPERATORS:
            msg = f"expected a value, not {token!r}"
            raise QueryError(msg)
        return token

    def _list(self) -> tuple[str, ...]:
        if self._next("'['") != "[":
            msg = "'in' takes a list: in [a, b]"
            raise QueryError(msg)
        values = [self._value()]
        while self._keyword(","):
            values.append(self._value())
        if self._next("']'") != "]":
            msg = "a '[' is not closed"
            raise QueryError(msg)
        return tuple(values)


def parse(text: str) -> Query:
    """Parse a cluster query language expression.

    Raises:
        QueryError: it cannot be parsed, or uses what LocalEcs does not support.
    """
    if len(text) > _MAX_LENGTH:
        msg = f"the filter is longer than {_MAX_LENGTH} characters"
        raise QueryError(msg)
    return _Parser(text).parse()


def _subject(token: str) -> tuple[str, str | None]:
    if token.startswith("attribute:"):
        name = token.removeprefix("attribute:")
        if not name:
            msg = "attribute: needs a name, e.g. attribute:ecs.instance-type"
            raise QueryError(msg)
        return "attribute", name
    if token in _SUBJECT_OPERATORS:
        return token, None
    if token in _UNSUPPORTED_SUBJECTS:
        msg = f"the subject {token!r} is not supported by LocalEcs"
        raise QueryError(msg)
    msg = f"{token!r} is not a subject of the cluster query language"
    raise QueryError(msg)


def _check_values(condition: Condition) -> None:
    # Typed values are checked at parse time, so a bad filter fails even on an empty cluster.
    convert = {
        "agentConnected": _boolean,
        "runningTasksCount": _integer,
        "registeredAt": _date,
    }.get(condition.subject)
    if convert is not None:
        for value in condition.values:
            convert(value)


def _boolean(value: str) -> bool:
    if value.lower() not in {"true", "false"}:
        msg = f"agentConnected takes true or false, not {value!r}"
        raise QueryError(msg)
    return value.lower() == "true"


def _integer(value: str) -> int:
    if not value.isdigit():
        msg = f"runningTasksCount takes a whole number, not {value!r}"
        raise QueryError(msg)
    return int(value)


def _date(value: str) -> datetime:
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        msg = f"registeredAt takes an ISO 8601 date, e.g. 2024-01-31T00:00:00Z, not {value!r}"
        raise QueryError(msg) from None


def _aware(moment: datetime) -> datetime:
    # moto records naive UTC times; a date given without a zone is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _compare(operator: str, actual: _Ordered, expected: _Ordered) -> bool:
    if operator == "==":
        return actual == expected
    if operator == "!=":
        return actual != expected
    if operator == ">":
        return actual > expected
    if operator == ">=":
        return actual >= expected
    if operator == "<":
        return actual < expected
    return actual <= expected


def _compare_set(operator: str, actual: str, values: tuple[str, ...]) -> bool:
    if operator in {"==", "in"}:
        return actual in values
    return actual not in values


def _attribute_matches(condition: Condition, attributes: Mapping[str, str | None]) -> bool:
    present = condition.name in attributes
    if condition.operator == "exists":
        return present
    if condition.operator == "!exists":
        return not present
    value = attributes.get(condition.name or "")
    if condition.operator in {"!=", "!in"}:
        # ECS: an instance without the attribute is "not equal" to every value.
        return not present or value not in condition.values
    return present and value in condition.values
