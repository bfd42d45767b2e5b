"""`python -m dq_platform` is the `dqp` CLI (the demo runs its steps this way)."""

from dq_platform.cli import main

main()
