"""Every setting of every service is described where it is declared, the nested shared ones
(Kafka, logging, object store) included, so that `settings.py` is the reference the README
sends an operator to."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from quax_aggregator.settings import AggregatorSettings
from quax_api.settings import ApiSettings
from quax_archiver.settings import ArchiverSettings
from quax_fft_worker.settings import FftWorkerSettings
from quax_producer.settings import ProducerSettings

SERVICES = [ProducerSettings, FftWorkerSettings, AggregatorSettings, ApiSettings, ArchiverSettings]


def _undescribed(cls: type[BaseModel], path: str) -> list[str]:
    missing = []
    for name, field in cls.model_fields.items():
        if not field.description:
            missing.append(f"{path}.{name}")
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            missing += _undescribed(nested, f"{path}.{name}")
    return missing


@pytest.mark.parametrize("cls", SERVICES, ids=[c.__name__ for c in SERVICES])
def test_every_field_is_described(cls: type[BaseModel]) -> None:
    assert _undescribed(cls, cls.__name__) == []
    nested = [f for f in cls.model_fields.values() if isinstance(f.annotation, type)
              and issubclass(f.annotation, BaseModel)]  # fmt: skip
    assert len(nested) >= 2  # kafka and logging at least: the walk goes into them
