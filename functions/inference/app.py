"""Lambda entry point of the inference image: everything lives in the dq_platform package."""

from dq_platform.inference.handler import handler

__all__ = ["handler"]
