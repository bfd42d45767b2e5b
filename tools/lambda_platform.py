"""The platform a Lambda Python runtime gives its code, and the pip flags that download wheels for it.

One table, from the AWS Lambda runtimes page (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html,
"Supported runtimes", column "Operating system"): python3.12 and newer run on Amazon Linux 2023, python3.11
and older on Amazon Linux 2. The public base images `public.ecr.aws/lambda/python:<version>` are built on the
same OS as the runtime of that version. glibc: 2.26 on Amazon Linux 2, 2.34 on Amazon Linux 2023.

A wheel installs on a platform when one of its tags names that CPython (or the stable ABI below it) and a
manylinux level no newer than the platform's glibc. `pip download --platform` does not widen a
`manylinux_2_X` tag to the older levels, so the flags name every level from 2_17 up to the platform's glibc,
plus `manylinux2014` (which pip widens to manylinux2010 and manylinux1).

Used by the root Makefile, layers/domain/Makefile and tools/sam-local/*.sh, which call
`python3 tools/lambda_platform.py pip-flags` (standard library only, any Python 3.9+), and by
tests/infra/test_deploy_readiness.py, which checks the downloaded wheels against the templates.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatingSystem:
    name: str
    glibc: tuple[int, int]


AMAZON_LINUX_2 = OperatingSystem("Amazon Linux 2", (2, 26))
AMAZON_LINUX_2023 = OperatingSystem("Amazon Linux 2023", (2, 34))

# Lambda Python runtime (and base image) version -> its operating system. Source: the Lambda runtimes page.
RUNTIME_OS: dict[str, OperatingSystem] = {
    "3.9": AMAZON_LINUX_2,
    "3.10": AMAZON_LINUX_2,
    "3.11": AMAZON_LINUX_2,
    "3.12": AMAZON_LINUX_2023,
    "3.13": AMAZON_LINUX_2023,
    "3.14": AMAZON_LINUX_2023,
}

# The Python of every function and of the layer (template `Runtime:`, the Dockerfiles' BASE_IMAGE). The
# wheels are downloaded for it; tests/infra/test_deploy_readiness.py fails when the templates name another.
LAMBDA_PYTHON = "3.13"
OLDEST_MANYLINUX_MINOR = 17  # manylinux2014 = manylinux_2_17: nothing on PyPI targets an older glibc any more


def operating_system(python: str) -> OperatingSystem:
    """The OS of the Lambda runtime `python<python>`; an unknown version is an error, never a guess."""
    try:
        return RUNTIME_OS[python]
    except KeyError:
        raise KeyError(f"python{python} is not in RUNTIME_OS: add it from the Lambda runtimes page") from None


def manylinux_platforms(glibc: tuple[int, int], arch: str = "x86_64") -> list[str]:
    """Every manylinux platform tag a system with this glibc accepts, newest first."""
    major, minor = glibc
    if major != 2 or minor < OLDEST_MANYLINUX_MINOR:
        raise ValueError(f"glibc {major}.{minor} is older than manylinux2014")
    levels = [f"manylinux_2_{m}_{arch}" for m in range(minor, OLDEST_MANYLINUX_MINOR - 1, -1)]
    return [*levels, f"manylinux2014_{arch}"]


def pip_flags(python: str = LAMBDA_PYTHON, arch: str = "x86_64") -> list[str]:
    """`pip download`/`pip install --target` flags for binary wheels that run on the Lambda runtime."""
    flags = ["--only-binary=:all:"]
    for platform in manylinux_platforms(operating_system(python).glibc, arch):
        flags += ["--platform", platform]
    return [*flags, "--python-version", python, "--implementation", "cp", "--abi", "cp" + python.replace(".", "")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    flags = sub.add_parser("pip-flags", help="print the pip flags on one line")
    flags.add_argument("--python", default=LAMBDA_PYTHON, help=f"Lambda Python version (default {LAMBDA_PYTHON})")
    flags.add_argument("--arch", default="x86_64")
    sub.add_parser("python", help="print the Lambda Python version the wheels target")
    args = parser.parse_args(argv)
    if args.command == "python":
        print(LAMBDA_PYTHON)
    else:
        print(" ".join(pip_flags(args.python, args.arch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
