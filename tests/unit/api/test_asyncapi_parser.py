"""The generated AsyncAPI document as integrators check it: `@asyncapi/parser` finds 0 errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs the pinned parser script of tools/asyncapi
from pathlib import Path
from typing import Any

import pytest

from ground.settings import PROJECT_ROOT
from tests.unit.api.test_asyncapi import generated

TOOL_DIR = PROJECT_ROOT / "tools" / "asyncapi"
SCRIPT = TOOL_DIR / "validate.mjs"
PARSER = TOOL_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"


def node() -> str:
    """The node binary with the parser installed; skip locally, fail in CI (`make tools` installs it)."""
    binary = shutil.which("node")
    missing = None
    if binary is None:
        missing = "node is not on PATH"
    elif not PARSER.is_file():
        missing = f"@asyncapi/parser is not installed in {TOOL_DIR} (run `make tools`)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    assert binary is not None
    return binary


def parse(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return subprocess.run(  # nosec B603 - fixed arguments, no shell
        [node(), str(SCRIPT), str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_official_parser_reports_no_error(tmp_path: Path) -> None:
    result = parse(generated(), tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 error(s)" in result.stdout
    assert "document parsed" in result.stdout


def test_the_parser_script_fails_on_an_unresolvable_ref(tmp_path: Path) -> None:
    # Proves the check can fail: a ref relative to a schema's own $id, as the document once had.
    document = generated()
    data = document["components"]["messages"]["cn.yekuo.customer.changed.v1"]["payload"]["schema"]
    data["properties"]["data"] = {"$ref": "urn:yekuo:schema:customer.v1"}
    result = parse(document, tmp_path)
    assert result.returncode == 1
    assert "error:" in result.stdout
    assert "urn:yekuo:schema:customer.v1" in result.stdout
