"""Finding a job's entry function and calling it with the arguments it accepts (the documented extension point)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

# What the runner offers every job, by parameter name: `env` (the validated configuration, read-only), `engine`
# (the inventory database, carrying the run's load policy), `report` (vocab.JobReport) and `stop` (a
# threading.Event set when the run is being stopped). A function taking none of them is called without arguments.
OFFERED = ("env", "engine", "report", "stop")
_BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def load_entrypoint(dotted_path: str) -> Callable[..., Any]:
    module_name, _, function_name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def accepted_arguments(function: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The offered keyword arguments `function` takes (all of them when it takes **kwargs) (pure)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(offered)
    return {name: value for name, value in offered.items()
            if name in parameters and parameters[name].kind in _BY_KEYWORD}


def call_entrypoint(function: Callable[..., Any], offered: Mapping[str, Any]) -> Any:
    return function(**accepted_arguments(function, offered))
