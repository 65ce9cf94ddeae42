"""Workflows in Amazon States Language: the pure core (no HTTP, no store).

`definition` parses and checks a definition into a `Machine`; `machine`
computes one state's step at a time; `paths` and `choice` are the data flow
and the Choice rules they use. The durable runner (gateway/jobs/) drives it.
"""

from .definition import Machine, compile_definition, parse_definition, task_resources
from .errors import StatesError

__all__ = ["Machine", "StatesError", "compile_definition", "parse_definition", "task_resources"]
