"""Frozen dataclasses built in hot paths (tick snapshots, own orders, order reports and events).

A frozen dataclass's generated `__init__` stores each field through `object.__setattr__`, the
slowest way to set a slot. `quick_init` gives the class an `__init__` with the same signature
and defaults that stores through the slots' own descriptors instead; the instances are exactly
as frozen afterwards (assignment still raises `FrozenInstanceError`)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound=type)


def quick_init(cls: C) -> C:
    fields = dataclasses.fields(cls)
    if not getattr(cls, "__slots__", None) or any(f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: quick_init needs slots and no default factories")
    ns: dict[str, Any] = {}
    params, body = [], []
    for f in fields:
        ns[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            ns[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(src, ns)  # noqa: S102 - generated from the dataclass's own field names, as dataclasses does
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = getattr(cls, "__init__").__doc__  # noqa: B009 - mypy: __init__ on a class
    setattr(cls, "__init__", init)  # noqa: B010
    return cls
