"""Every route of the node has a method in both clients (a new route fails here until it gets one)."""

from __future__ import annotations

import inspect

from carecoin import AsyncClient, Client
from carecoin.api import ROUTE_METHODS
from node.routes import ROUTES


def test_every_route_of_the_table_has_a_client_method():
    missing = [(r.method, r.path) for r in ROUTES if (r.method, r.path) not in ROUTE_METHODS]
    assert not missing, f"add a method to carecoin/api.py and its line to ROUTE_METHODS for {missing}"


def test_every_mapped_method_exists_on_both_clients():
    for route, name in ROUTE_METHODS.items():
        assert callable(getattr(Client, name, None)), (route, name)
        assert callable(getattr(AsyncClient, name, None)), (route, name)
        sync, both = inspect.signature(getattr(Client, name)), inspect.signature(getattr(AsyncClient, name))
        assert sync.parameters == both.parameters, (route, name)
