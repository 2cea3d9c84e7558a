"""A live node answers every operation of its own ``/openapi.json`` truthfully, whatever a client sends.

A real single-validator node (the in-process app over a customer story, on a real 127.0.0.1 port, its own
event loop in a thread) is loaded by schemathesis from its ``/openapi.json``; every operation gets a bounded
number of generated requests (valid and invalid) and each answer must pass: ``not_a_server_error`` (no 5xx),
``status_code_conformance`` (only statuses the document declares), ``content_type_conformance`` and
``response_schema_conformance``. Staff-signed operations are signed by the chain's staff key over the exact
bytes sent, so their bodies are exercised beyond the guard.
"""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from node.routes import ROUTES
from node.vault import compute_request_headers
from tests.node.live_node import LiveNode
from tests.node.local_chain import CHAIN, LocalChain, play_story

EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live_node(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "db"
    chain = LocalChain(path)
    play_story(chain)
    chain.store.close()
    node = LiveNode(chain.node, chain.genesis, path)
    node.chain = chain  # its staff key signs the vault operations
    yield node
    node.close()


@pytest.fixture(scope="module")
def live_schema(live_node):
    load_all_checks()
    return schemathesis.openapi.from_url(f"{live_node.url}/openapi.json")


def send_signed(case, live_node, session: requests.Session) -> requests.Response:
    """Send ``case`` signed by the staff key over the exact path and body bytes that go on the wire."""
    kwargs = case.as_transport_kwargs(base_url=live_node.url)
    request = requests.Request(**{k: kwargs[k] for k in ("method", "url", "headers", "params", "json", "data")
                                  if kwargs.get(k) is not None}).prepare()
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    request.headers.update(compute_request_headers(live_node.chain.staff, CHAIN, request.method,
                                                   request.path_url, body, int(time.time() * 1000)))
    return session.send(request, timeout=10)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", [(r.method, r.path) for r in ROUTES], ids=lambda v: v)
def test_every_operation_answers_what_its_openapi_document_promises_and_never_5xx(live_node, live_schema, method,
                                                                                   path, mode):
    operation = live_schema[path][method]
    if mode is GenerationMode.NEGATIVE and not (operation.definition.raw["parameters"]
                                                 or "requestBody" in operation.definition.raw):
        pytest.skip("nothing a client sends to this operation can break its document")
    signed = operation.definition.raw.get("x-carecoin-auth") in ("staff-signed", "signed")
    session = requests.Session()

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def answers_truthfully(case) -> None:
        if signed:
            case.validate_response(send_signed(case, live_node, session), checks=CHECKS)
        else:
            case.call_and_validate(base_url=live_node.url, session=session, checks=CHECKS, timeout=10)

    with session:
        answers_truthfully()
