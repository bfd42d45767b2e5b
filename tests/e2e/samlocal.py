"""Drive the SAM CLI and Docker the way users do, for the e2e tier.

Only local traffic: the environment given to `sam` has no AWS credentials, telemetry off, metadata-service
probes off and image pulls skipped (this machine reaches no container registry; the Lambda base image is
the local stand-in built by tools/sam-local/build-base-image.sh). `sam build` and `sam local` run through
tools/sam-local/sam.sh, as a user does: it builds generated template copies whose image functions use the
stand-in and gives each zip function the stand-in with --invoke-image.
Every container these helpers start is attached to a Docker network created for the test session, so
teardown finds and removes exactly those containers, by id, and nobody else's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.aws import free_port

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "sam-local"
SAM = Path(os.environ.get("SAM_VENV", ROOT / ".venv-sam")) / "bin" / "sam"
SAM_LOCAL = TOOLS / "sam.sh"  # sam build / sam local on the local stand-in
WORK = ROOT / "build" / "sam-local"
LOGS = WORK / "logs"
BUILD_DIR = WORK / "sam-build"  # where sam.sh builds (SAM_LOCAL_BUILD in tools/sam-local/env.sh)
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
EVENTS = ROOT / "events"


def local_env(**extra: str) -> dict[str, str]:
    """The environment of every `sam`/`docker` call: nothing in it can reach or authenticate to AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        SAM_SKIP_PULL_IMAGE="1",
        PATH=f"{SAM.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


@dataclass
class Timings:
    """Wall time of each e2e step; printed at the end of the run and written to build/sam-local/logs."""

    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.steps.append((label, time.perf_counter() - start))

    def report(self) -> str:
        return "\n".join(f"{label:<52} {seconds:7.1f} s" for label, seconds in self.steps)


def run_logged(cmd: list[str], log_name: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    """Run cmd with stdout+stderr in build/sam-local/logs/<log_name>; raise with the log's tail on failure."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / log_name
    proc = subprocess.run(
        cmd, cwd=ROOT, env=local_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}", encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-40:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (rc={proc.returncode}); log: {log}\n{tail}")
    return proc


def docker(*args: str, timeout: float = 60) -> str:
    proc = subprocess.run(
        ["docker", *args], env=local_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


@contextmanager
def session_network(name: str) -> Iterator[str]:
    """A Docker network that marks the containers of this test session; they are removed by id at exit."""
    docker("network", "create", "--label", "dq.e2e=1", name)
    try:
        yield name
    finally:
        remove_containers(name)
        docker("network", "rm", name)


def containers_on(network: str) -> list[str]:
    return docker("ps", "-aq", "--no-trunc", "--filter", f"network={network}").split()


def remove_containers(network: str) -> list[str]:
    """Remove, by id, the containers still attached to network; returns their ids."""
    ids = containers_on(network)
    for container in ids:
        try:
            docker("rm", "-f", container)
        except RuntimeError as exc:  # SAM may be removing it at the same moment
            if "No such container" not in str(exc) and "already in progress" not in str(exc):
                raise
    return ids


@dataclass
class InvokeResult:
    """What `sam local invoke` gave: the function's result (stdout) and the function/SAM logs (stderr)."""

    returncode: int
    payload: Any
    stdout: str
    stderr: str

    @property
    def body(self) -> Any:
        """The decoded JSON body of an API Gateway proxy result."""
        assert isinstance(self.payload, dict), f"not a proxy result: {self.stdout[-2000:]}\n{self.stderr[-3000:]}"
        assert isinstance(self.payload.get("body"), str), f"proxy result without a string body: {self.payload}"
        return json.loads(self.payload["body"])


def invoke(
    function: str, event: Path, network: str, env_vars: dict[str, dict[str, str]] | None = None, timeout: float = 180
) -> InvokeResult:
    """`sam local invoke STACK/FUNCTION -e EVENT` on the built template.

    Its exit code is 0 even when the handler raised, so callers assert on the returned payload; a stdout
    that is not one JSON document (a crash, a timeout message) is returned as payload None.
    """
    cmd = [
        str(SAM_LOCAL), "local", "invoke", function,
        "--event", str(event),
        "--skip-pull-image",
        "--docker-network", network,
    ]  # fmt: skip
    LOGS.mkdir(parents=True, exist_ok=True)
    if env_vars:
        # `--env-vars` overrides variables the template declares (it cannot add new ones).
        env_file = LOGS / f"env-{event.stem}.json"
        env_file.write_text(json.dumps(env_vars), encoding="utf-8")
        cmd += ["--env-vars", str(env_file)]
    proc = subprocess.run(cmd, cwd=ROOT, env=local_env(), capture_output=True, text=True, timeout=timeout, check=False)
    (LOGS / f"invoke-{event.stem}.log").write_text(
        f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}", encoding="utf-8"
    )
    try:
        payload = json.loads(proc.stdout)
    except ValueError:
        payload = None
    return InvokeResult(proc.returncode, payload, proc.stdout, proc.stderr)


@dataclass
class HttpReply:
    status: int
    body: Any
    seconds: float
    headers: dict[str, str]


def http(method: str, url: str, payload: Any = None, raw: bytes | None = None, timeout: float = 60) -> HttpReply:
    """One real HTTP request; 4xx/5xx are returned, not raised, so tests assert on them."""
    data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status, content, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, content, hdrs = exc.code, exc.read(), dict(exc.headers)
    seconds = time.perf_counter() - start
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = content.decode(errors="replace")
    return HttpReply(status, body, seconds, hdrs)


class StartApi:
    """`sam local start-api --warm-containers EAGER` on 127.0.0.1:<free port>, stopped with SIGTERM."""

    def __init__(self, network: str, port: int | None = None) -> None:
        self.network = network
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = LOGS / "start-api.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/health", timeout: float = 300) -> float:
        """Start and wait until ready_path gets an HTTP answer; returns the seconds that took.

        Any status counts as up (with EAGER, SAM listens only once the containers are warm): a 502 from a
        broken function is for the tests to report, not a reason to keep waiting.
        """
        LOGS.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(SAM_LOCAL), "local", "start-api",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--warm-containers", "EAGER",
            "--skip-pull-image",
            "--docker-network", self.network,
        ]  # fmt: skip
        start = time.perf_counter()
        with self.log.open("wb") as log:
            # Own session: SIGTERM reaches SAM itself; a SIGINT from a terminal would not reach it.
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=local_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = start + timeout
        last = "no answer"
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sam local start-api exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                http("GET", self.url + ready_path, timeout=60)
                return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise RuntimeError(f"start-api not ready after {timeout:.0f} s (last: {last}):\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (SAM then stops and removes its warm containers); SIGKILL only if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


def _load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    loaded: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(path))))
    return loaded


_SUB_FUNCTION = re.compile(r"\$\{([A-Za-z0-9]+)\.(?:Arn|Alias)\}")
_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "x-amazon-apigateway-any-method"}


def _integration_function(operation: dict[str, Any]) -> str | None:
    """The logical id in an aws_proxy integration URI such as `!Sub ...functions/${Fn.Alias}/invocations`."""
    uri = (operation.get("x-amazon-apigateway-integration") or {}).get("uri")
    if isinstance(uri, dict):
        uri = uri.get("Fn::Sub")
    if isinstance(uri, list):
        uri = uri[0]
    match = _SUB_FUNCTION.search(uri) if isinstance(uri, str) else None
    return match.group(1) if match else None


def functions_by_route(template: Path | None = None, prefix: str = "") -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the `Stack/Function` path `sam local` uses, read from the source templates.

    Routes come from Api events on functions and from OpenAPI DefinitionBody integrations, and nested
    applications with a local Location are followed, as `sam local` does, so an event is invoked on the
    function whose template really serves its route.
    """
    template = template or ROOT / "template.yaml"
    routes: dict[tuple[str, str], str] = {}
    for name, res in _load_template(template).get("Resources", {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            nested = (template.parent / props["Location"]).resolve()
            if nested.is_file():
                routes.update(functions_by_route(nested, f"{prefix}{name}/"))
        elif res.get("Type") == "AWS::Serverless::Function":
            for event in (props.get("Events") or {}).values():
                if event.get("Type") == "Api":
                    method = str(event["Properties"]["Method"]).upper()
                    routes[(method, str(event["Properties"]["Path"]))] = f"{prefix}{name}"
        elif res.get("Type") == "AWS::Serverless::Api" and isinstance(props.get("DefinitionBody"), dict):
            for path, operations in (props["DefinitionBody"].get("paths") or {}).items():
                for method, operation in operations.items():
                    function = _integration_function(operation) if method in _HTTP_METHODS else None
                    if function:
                        routes[(method.upper(), path)] = f"{prefix}{function}"
    return routes


def all_functions(template: Path | None = None, prefix: str = "") -> set[str]:
    """Every `Stack/Function` path of the application, following local nested applications."""
    template = template or ROOT / "template.yaml"
    found: set[str] = set()
    for name, res in _load_template(template).get("Resources", {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
            nested = (template.parent / props["Location"]).resolve()
            if nested.is_file():
                found |= all_functions(nested, f"{prefix}{name}/")
        elif res.get("Type") == "AWS::Serverless::Function":
            found.add(f"{prefix}{name}")
    return found


def built_image(function_path: str) -> str:
    """The image tag `sam build` gave an image function (`Stack/Function`), from the built templates."""
    *stacks, function = function_path.split("/")
    template = BUILD_DIR.joinpath(*stacks, "template.yaml")
    props = _load_template(template)["Resources"][function]["Properties"]
    image: str = props["ImageUri"]
    return image
