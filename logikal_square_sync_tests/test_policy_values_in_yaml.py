"""Each policy value lives in policies.yaml only: the models name and bound the fields, nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from logikal_square_sync.policies import POLICIES_FILE, Policies, load_policies


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    yield model
    for field in model.model_fields.values():
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _models(candidate)


def test_no_model_field_has_a_value_of_its_own() -> None:
    # None marks a field a policy leaves out (an interval policy has no cron), not a value.
    with_values = {
        f"{model.__name__}.{name} = {field.get_default()!r}"
        for model in _models(Policies)
        for name, field in model.model_fields.items()
        if not field.is_required() and field.get_default() is not None
    }
    assert not with_values, f"values belong in policies.yaml, not in the models: {sorted(with_values)}"


def test_an_override_of_one_value_keeps_every_other_packaged_value(tmp_path: Path) -> None:
    override = tmp_path / "policies.yaml"
    override.write_text("square: {catalog: {rows_per_transaction: 500}}\n")
    packaged = load_policies().model_dump()
    layered = load_policies(POLICIES_FILE, override).model_dump()
    assert layered["square"]["catalog"].pop("rows_per_transaction") == 500
    packaged["square"]["catalog"].pop("rows_per_transaction")
    assert layered == packaged
