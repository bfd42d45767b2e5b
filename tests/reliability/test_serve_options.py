"""`dqp serve --log-file` and `--ab-weights`: the local run's logs kept in a file, the split set locally."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dq_platform.cli import app
from dq_platform.inference.ab import ABWeights
from dq_platform.inference.local_server import AB_WEIGHTS_OVERRIDE_SOURCE, TeeStream, parse_ab_weights
from tests.reliability.support import call, dqp_serve, post_json

pytestmark = pytest.mark.reliability


@pytest.mark.unit
def test_ab_weights_json_is_validated_like_the_ssm_parameter() -> None:
    assert parse_ab_weights('{"baseline": 0.8, "transformer": 0.2}') == ABWeights(baseline=0.8, transformer=0.2)
    with pytest.raises(ValueError, match=r"not valid JSON: Expecting"):
        parse_ab_weights("{baseline: 1}")
    with pytest.raises(ValueError, match=r"transformer: Input should be greater than or equal to 0"):
        parse_ab_weights('{"baseline": 1, "transformer": -0.1}')
    with pytest.raises(ValueError, match=r"shadow: Extra inputs are not permitted"):
        parse_ab_weights('{"baseline": 1, "transformer": 0, "shadow": 0.5}')
    with pytest.raises(ValueError, match=r"baseline \+ transformer must be > 0"):
        parse_ab_weights('{"baseline": 0, "transformer": 0}')
    with pytest.raises(ValueError, match=r"weights: Input should be a valid dictionary"):
        parse_ab_weights("[0.9, 0.1]")


@pytest.mark.unit
def test_tee_stream_writes_everything_to_every_target() -> None:
    a, b = io.StringIO(), io.StringIO()
    tee = TeeStream(a, b)
    assert tee.write('{"message": "prediction"}\n') == 26
    print("emf", file=tee)
    tee.flush()
    assert a.getvalue() == b.getvalue() == '{"message": "prediction"}\nemf\n'


@pytest.mark.unit
@pytest.mark.parametrize(
    ("weights", "says"),
    [
        ('{"baseline": -1, "transformer": 1}', "baseline: Input should be greater than or equal to 0"),
        ("0.9/0.1", "--ab-weights is not valid JSON"),
    ],
)
def test_serve_refuses_bad_weights_before_loading_anything(tmp_path: Path, weights: str, says: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--models", str(tmp_path / "none"), "--ab-weights", weights])
    assert result.exit_code == 2
    assert says in result.output


@pytest.mark.unit
def test_serve_names_an_unwritable_log_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["serve", "--models", str(tmp_path), "--log-file", str(blocker / "x.log")])
    assert result.exit_code == 2
    assert "cannot write" in result.output


@pytest.mark.integration
def test_log_file_and_weights_override_feed_the_ab_report(models_root: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "serve.log"
    weights = '{"baseline": 0, "transformer": 1, "shadow_rate": 1}'
    args = ["--log-file", str(log), "--ab-weights", weights]
    with dqp_serve(models_root, tmp_path, args=args) as served:
        ab = call(served.url, "GET", "/models").json()["ab_weights"]
        assert ab == {"baseline": 0.0, "transformer": 1.0, "shadow_rate": 1.0, "source": AB_WEIGHTS_OVERRIDE_SOURCE}
        for i in range(12):
            reply = post_json(served.url, {"text": f"Clause {i}: fees are non-refundable.", "doc_id": f"D-{i}"})
            assert reply.status == 200
            assert reply.headers["x-model"] == "transformer"
        assert "logs also to" in served.stderr()
    stdout = served.stdout()
    assert log.read_text() == stdout  # the same bytes: JSON logs and EMF blobs alike
    records = [json.loads(line) for line in stdout.splitlines()]
    predictions = [r for r in records if r.get("message") == "prediction"]
    assert len(predictions) == 12
    assert {r["ab_weights_source"] for r in predictions} == {AB_WEIGHTS_OVERRIDE_SOURCE}
    assert {r["shadow_model"] for r in predictions} == {"baseline"}
    assert any("_aws" in r for r in records)

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["ab-report", "--logs", str(log), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "ab-report.json").read_text())
    assert report["parse"]["used"]["prediction"] == 12
    assert sum(s["agreement"]["n"] for s in report["shadow"]) == 12
