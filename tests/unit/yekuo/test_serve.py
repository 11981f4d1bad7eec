"""`yekuo run` refuses to start without a real audit chain key, as it does without a PII key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ground.settings import Settings
from store.crypto import new_key
from tests.support.auth import TEST_SECRET
from yekuo import serve


@pytest.mark.parametrize(
    ("configured", "named"),
    [(None, "YEKUO_AUDIT__CHAIN_KEY"), ("c2hvcnQ=", "at least 32"), ("not base64!", "not valid base64")],
    ids=["missing", "short", "not base64"],
)
def test_yekuo_run_refuses_to_start_without_a_real_chain_key(
    configured: str | None,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", TEST_SECRET)
    monkeypatch.setenv("YEKUO_PII__KEYS", json.dumps({"k1": new_key()}))
    monkeypatch.setenv("YEKUO_DB_URL", f"sqlite:///{tmp_path}/hub.db")
    if configured is None:
        monkeypatch.delenv("YEKUO_AUDIT__CHAIN_KEY", raising=False)
    else:
        monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", configured)

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("yekuo run went on to open the database")

    monkeypatch.setattr(serve, "create_engine", started)
    assert serve.serve_hub(Settings()) == 1
    err = capsys.readouterr().err
    assert err.startswith("yekuo run: ") and named in err
