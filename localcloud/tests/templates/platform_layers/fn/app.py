"""A function that imports one module from each of its layers."""

import sys
from typing import Any

import built_module
import plain_module


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Say where each module came from and what sys.path looks like."""
    return {
        "built": built_module.WHERE,
        "plain": plain_module.WHERE,
        "built_file": built_module.__file__,
        "sys_path": sys.path,
    }
