"""moto's response serializer with its attribute look-ups computed once, for every response.

moto renders a response by trying, for each member of each object, a list of candidate
attribute names: the member's name, its snake_case form, and aliases from the object's class
and from the shape. For one (class, member, shape) the list is the same every time, yet moto
builds it afresh for every member of every object of every response: most of what a
DescribeContainerInstances of 10 instances costs the server (``benchmarks/local_ops.py``).
`memo_picker` is moto's picker with that list built once; the values are still read from each
object, so every response is rendered exactly as moto renders it.

`install` makes moto's own responses use it. moto builds its picker from a module global, so
this holds for the whole process (every moto service, every LocalEcs), as moto's task
transitions do; being moto's picker plus a cache, it answers what moto's answers.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["install", "memo_picker"]


@functools.cache
def memo_picker() -> type[Any]:
    """The class of moto's ``XFormedAttributePicker``, each (class, member, shape)'s names kept."""
    from moto.core.serialize import XFormedAttributePicker  # noqa: PLC0415

    class MemoPicker(XFormedAttributePicker):
        """moto's picker; the candidate names of each (class, member, shape) computed once.

        The aliases moto considers come from the class (its ``Meta``), the member's name and
        the shape (its serialization name, its parent): the object's values play no part.
        Each entry keeps its shape, so an ``id`` is never mistaken for a later shape's.
        """

        _keys: dict[tuple[type[Any], str, int], tuple[Any, tuple[str, ...]]] = {}  # noqa: RUF012

        def get_possible_keys(self, context: Any) -> Any:
            """The candidate attribute names for ``context``, as moto would list them."""
            shape = context.shape
            key = (type(context.obj), context.key, id(shape))
            kept = self._keys.get(key)
            if kept is None or kept[0] is not shape:
                kept = (shape, tuple(super().get_possible_keys(context)))
                self._keys[key] = kept
            return iter(kept[1])

    return MemoPicker


def install() -> None:
    """Make moto's responses render with `memo_picker` (idempotent, process-wide)."""
    from moto.core import responses  # noqa: PLC0415

    vars(responses)["XFormedAttributePicker"] = memo_picker()
