"""The services one can apply for and the fees one can pay through the bot (``catalog.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from rules.datafile import load_model_file

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"


class Service(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_]{1,30}$")
    title: str = Field(min_length=1, max_length=60)


class Fee(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_]{1,30}$")
    title: str = Field(min_length=1, max_length=100)
    amount: int = Field(gt=0)


class Catalog(BaseModel):
    services: list[Service] = Field(min_length=1)
    fees: list[Fee] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        for name, items in (("services", self.services), ("fees", self.fees)):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{name}: repeated id {', '.join(duplicates)}")
        return self

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def fee(self, fee_id: str) -> Fee | None:
        return next((f for f in self.fees if f.id == fee_id), None)


def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    """Load and validate the catalog; an error (``RulesFileError``) names the file and the
    field."""
    return load_model_file(path, Catalog)
