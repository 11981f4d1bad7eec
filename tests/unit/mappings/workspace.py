"""A scratch configuration folder and a small target model for mapping tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import AwareDatetime, Field

from canonical_model.application import ImportanceGrade
from canonical_model.common import CanonicalModel, GeoPoint, SourceRef
from ground.errors import ConfigError
from mappings.codes import CodeTables, load_code_tables
from mappings.engine import Mapping
from mappings.loader import load_mapping, read_mapping
from mappings.yamlfile import Diagnostics


class Item(CanonicalModel):
    """A list item of the sample model."""

    code: str = Field(min_length=1)
    size_kva: float | None = None
    ok: bool = True


class Sample(CanonicalModel):
    """A target model with one field of each kind the engine fills."""

    key: str = Field(min_length=1)
    note: str | None = None
    capacity_kva: float | None = Field(default=None, ge=0)
    load_kw: float | None = None
    voltage_kv: float | None = Field(default=None, gt=0)
    at: AwareDatetime | None = None
    grade: ImportanceGrade = ImportanceGrade.NONE
    flag: bool | None = None
    location: GeoPoint | None = None
    items: tuple[Item, ...] = ()
    refs: tuple[SourceRef, ...] = ()


MODELS = {"Sample": (Sample, "sample.v1")}

# Mapping files written by Workspace.mapping have this header, so the fields start on line 5.
HEADER = "mapping: test/sample\nsource: {system: test, record: sample}\ntarget: Sample\nfields:\n"
FIRST_FIELD_LINE = 5


class Workspace:
    """A configuration folder (mappings/, mappings/codes/, routes/) under a temporary path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mappings_dir = root / "mappings"
        self.codes_dir = self.mappings_dir / "codes"
        self.codes_dir.mkdir(parents=True)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def table(self, name: str, codes: str) -> Path:
        body = textwrap.indent(textwrap.dedent(codes).lstrip("\n"), "  ")
        return self.write(f"mappings/codes/{name}.yaml", f"table: {name}\ncodes:\n{body}")

    def codes(self) -> CodeTables:
        return load_code_tables(self.codes_dir, root=self.root)

    def mapping_file(self, fields: str) -> Path:
        body = textwrap.indent(textwrap.dedent(fields).lstrip("\n"), "  ")
        return self.write("mappings/test/sample.yaml", HEADER + body)

    def mapping(self, fields: str) -> Mapping:
        path = self.mapping_file(fields)
        return load_mapping(path, self.codes(), self.mappings_dir, root=self.root, models=MODELS)

    def mapping_errors(self, fields: str) -> list[ConfigError]:
        with pytest.raises(ConfigError):
            self.mapping(fields)
        diag = Diagnostics(self.root)
        read_mapping(self.mappings_dir / "test/sample.yaml", self.codes(), self.mappings_dir, diag, MODELS)
        return diag.errors
