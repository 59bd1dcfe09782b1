"""Property-based requests generated from the OpenAPI document: no request gets a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from quax_api.main import create_app
from quax_api.settings import ApiSettings

from .conftest import build_run

application = create_app(ApiSettings(recent_files=5), kafka=False)
for run_id, files in (("run-a", 4), ("run-b", 1)):
    spectra, run = build_run(run_id, files)
    for spectrum in spectra:
        application.state.store.add_file(spectrum)
    application.state.store.add_run(run)
application.state.ready.set()

schema = schemathesis.openapi.from_asgi("/openapi.json", application)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, (case.path, case.query, response.text)
