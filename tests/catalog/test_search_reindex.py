"""reindex_catalog: a fresh index from PostgreSQL behind the alias, swapped atomically while searches run."""
from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command

from catalog.search import reindex as reindex_module
from catalog.search.client import SearchUnavailable, search_client, search_config
from catalog.search.reindex import reindex_catalog
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    SEARCH_URL,
    alias_targets,
    change_price,
    closed_port_url,
    create_product,
    indexed,
    product_envelopes,
    search_ids,
    search_prefix,
)

pytestmark = pytest.mark.django_db


def test_reindex_builds_documents_and_tombstones(search_prefix, api_client):
    published = [create_product(title=f"Rope Basket {number}", prices=["22.00"]) for number in range(3)]
    hidden = create_product(title="Rope Draft", prices=["5.00"], published=False)
    change_price(published[0], "24.00")

    result = reindex_catalog(batch_size=2)

    assert (result.documents, result.tombstones) == (3, 1)
    assert result.previous_indices == []
    assert alias_targets() == [result.index]
    assert indexed(published[0].pk)["_version"] == 2
    assert indexed(published[0].pk)["_source"]["price_min"] == "24.00"
    assert indexed(hidden.pk)["_source"]["published"] is False
    assert sorted(search_ids(api_client, q="rope")) == sorted(product.pk for product in published)
    settings = search_client().indices.get_settings(index=result.index)[result.index]["settings"]["index"]
    assert settings["refresh_interval"] == "1s"
    assert settings["number_of_replicas"] == "0"


def test_reindex_swaps_and_drops_old(search_prefix):
    create_product(title="Jute Rug", prices=["99.00"])
    first = reindex_catalog()

    second = reindex_catalog()

    assert second.index != first.index
    assert second.previous_indices == [first.index]
    assert alias_targets() == [second.index]
    assert not search_client().indices.exists(index=first.index)
    assert second.leftover_indices == []


def test_reindex_command_output(search_prefix):
    create_product(title="Cork Board", prices=["18.00"])
    output = io.StringIO()

    call_command("reindex_catalog", "--batch-size", "50", stdout=output)

    assert f"Built {alias_targets()[0]}: 1 published document(s), 0 tombstone(s)" in output.getvalue()
    assert "Previous index(es), now deleted: none." in output.getvalue()


def test_search_during_reindex(search_prefix, api_client):
    products = [create_product(title=f"Bamboo Spoon {number}", prices=["4.00"]) for number in range(40)]
    reindex_catalog()
    statuses: list[tuple[int, int]] = []
    stop = threading.Event()

    def search_until_stopped() -> None:
        # This thread has its own database connection, which cannot see the
        # test's uncommitted rows. The search view reads only OpenSearch.
        while not stop.is_set():
            response = api_client.get(SEARCH_URL, {"q": "bamboo"})
            statuses.append((response.status_code, response.json().get("count", -1)))

    searcher = threading.Thread(target=search_until_stopped)
    searcher.start()
    try:
        for _ in range(3):
            reindex_catalog()
    finally:
        stop.set()
        searcher.join(timeout=30)

    assert len(statuses) > 10
    assert set(statuses) == {(200, len(products))}


def test_reindex_catches_up_build_changes(search_prefix, monkeypatch):
    product = create_product(title="Brass Hook", prices=["3.00"])
    reindex_catalog()
    original_swap = reindex_module._swap_alias

    def change_then_swap(client, alias, new_index):
        # The consumer applies an event to the old index after the build read PostgreSQL.
        change_price(product, "3.50")
        from catalog.consumers import apply_product_event

        apply_product_event(product_envelopes(product.pk)[-1])
        return original_swap(client, alias, new_index)

    monkeypatch.setattr(reindex_module, "_swap_alias", change_then_swap)

    result = reindex_catalog()

    assert result.catch_up.indexed == 1
    assert indexed(product.pk)["_version"] == 2
    assert indexed(product.pk)["_source"]["price_min"] == "3.50"


def test_swap_retries_when_alias_moved(search_prefix, monkeypatch):
    create_product(title="Iron Nail", prices=["1.00"])
    first = reindex_catalog()
    original_swap = reindex_module._swap_alias
    competing: list[str] = []

    def competing_build_then_swap(client, alias, new_index):
        # Another build swaps the alias first, and ours must not leave two indexes behind it.
        monkeypatch.setattr(reindex_module, "_swap_alias", original_swap)
        competing.append(reindex_catalog().index)
        return original_swap(client, alias, new_index)

    monkeypatch.setattr(reindex_module, "_swap_alias", competing_build_then_swap)

    result = reindex_catalog()

    assert alias_targets() == [result.index]
    assert result.previous_indices == competing
    assert not search_client().indices.exists(index=first.index)
    assert not search_client().indices.exists(index=competing[0])


def test_failed_build_leaves_alias_unchanged(search_prefix, monkeypatch, api_client):
    product = create_product(title="Tin Can", prices=["2.00"])
    first = reindex_catalog()

    def broken_build(product_ids, **kwargs):
        raise RuntimeError("simulated failure while reading PostgreSQL")

    monkeypatch.setattr(reindex_module, "build_actions", broken_build)

    with pytest.raises(RuntimeError, match="simulated failure"):
        reindex_catalog()

    assert alias_targets() == [first.index]
    pattern = search_config().index_pattern
    assert sorted(search_client().indices.get(index=pattern)) == [first.index]
    assert search_ids(api_client, q="tin") == [product.pk]


def test_reindex_with_opensearch_down(search_prefix, settings):
    settings.OPENSEARCH_URL = closed_port_url()

    with pytest.raises(SearchUnavailable):
        reindex_catalog()
    with pytest.raises(CommandError, match="alias was left unchanged"):
        call_command("reindex_catalog", stdout=io.StringIO())
