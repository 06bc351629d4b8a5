"""The search-indexer consumer on the real Kafka broker: replays, older versions, outages, and admin to search.

The end-to-end test drives the whole path a price change takes: the admin
form commits the change and its outbox row, the polling relay publishes it,
`run_consumer search-indexer` writes the index, and the search API shows it.
"""
from __future__ import annotations

import io
import time
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

import catalog.consumers
from catalog.consumers import SearchIndexerConsumer
from catalog.models import ProductVariant
from catalog.search.drift import check_search_drift
from catalog.search.reindex import reindex_catalog
from catalog.services import product_delete
from cdc.envelope import dead_letter_topic, topic_for
from cdc.models import ProcessedEvent
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    SEARCH_URL,
    change_price,
    closed_port_url,
    create_product,
    indexed,
    product_envelopes,
    search_index,
    search_prefix,
    set_published,
)
from tests.cdc.conftest import (  # noqa: F401 - fixtures are found by name
    fast_consumers,
    kafka_inspector,
    kafka_producer,
    kafka_topic_prefix,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_consumers")]

# Upper bound for a price change to become searchable in the end-to-end test,
# including the consumer's group join (a few seconds on a fresh group).
SEARCH_LAG_DEADLINE_SECONDS = 30


def run_command(name: str, *args: str) -> str:
    output = io.StringIO()
    call_command(name, *args, stdout=output)
    return output.getvalue()


@pytest.fixture
def handler_calls(monkeypatch) -> list[int]:
    """Record the product id of every handler call, to count attempts per message."""
    calls: list[int] = []
    original = catalog.consumers.index_product_change

    def recording(*, product_id: int, event_version: int):
        calls.append(product_id)
        return original(product_id=product_id, event_version=event_version)

    monkeypatch.setattr(catalog.consumers, "index_product_change", recording)
    return calls


def test_replays_applied_once(search_index, kafka_producer, kafka_inspector, handler_calls):
    product = create_product(title="Felt Slippers", prices=["25.00"])
    change_price(product, "27.00")
    change_price(product, "29.00")
    created, first_change, second_change = product_envelopes(product.pk)
    # Newest first, then the older ones, then the same newest event again.
    for envelope in (second_change, created, first_change, second_change):
        kafka_producer.send_envelope(envelope)

    output = run_command("run_consumer", "search-indexer", "--max-messages", "4")

    assert output.strip() == "search-indexer: 4 message(s): 3 applied, 1 duplicate"
    # One call per applied event: the older versions (409 from OpenSearch) were not retried.
    assert handler_calls == [product.pk] * 3
    assert kafka_inspector.read_topic(dead_letter_topic(topic_for("product")), expected=0, timeout=2) == []
    assert ProcessedEvent.objects.filter(consumer="search-indexer").count() == 3
    stored = indexed(product.pk)
    assert stored["_version"] == 3
    assert stored["_source"]["price_min"] == "29.00"


def test_outage_then_replay_dlq(
    search_index, settings, kafka_producer, kafka_inspector, api_client
):
    kept = create_product(title="Linen Apron", prices=["19.00"])
    hidden = create_product(title="Linen Napkin", prices=["4.00"])
    removed = create_product(title="Linen Runner", prices=["33.00"])
    reindex_catalog()
    working_url = settings.OPENSEARCH_URL

    settings.OPENSEARCH_URL = closed_port_url()
    change_price(kept, "21.00")
    set_published(hidden, False)
    product_delete(product_id=removed.pk)
    for product_id in (kept.pk, hidden.pk, removed.pk):
        kafka_producer.send_envelope(product_envelopes(product_id)[-1])
    outage = run_command("run_consumer", "search-indexer", "--max-messages", "3")

    settings.OPENSEARCH_URL = working_url
    drift_before = check_search_drift(repair=False).found.drift_count
    replay = run_command("replay_dlq", "search-indexer")

    assert outage.strip() == "search-indexer: 3 message(s): 3 dead_lettered"
    assert drift_before == 3
    assert replay.strip() == "search-indexer dead letters: 3 message(s): 3 applied"
    assert check_search_drift(repair=False).found.drift_count == 0
    assert indexed(kept.pk)["_source"]["price_min"] == "21.00"
    assert indexed(hidden.pk)["_source"]["published"] is False
    assert indexed(removed.pk)["_source"]["published"] is False
    assert kafka_inspector.committed_to_end(SearchIndexerConsumer().group_id(), topic_for("product"))


def admin_change_form(client: Client, product_id: int) -> dict[str, str]:
    """Read the admin change form of a product as a browser would submit it unchanged."""
    response = client.get(f"/admin/catalog/product/{product_id}/change/")
    assert response.status_code == 200
    form = BeautifulSoup(response.content, "html.parser").find("form", id="product_form")
    data: dict[str, str] = {}
    for field in form.find_all(["input", "select", "textarea"]):
        name = field.get("name")
        if not name or field.get("type") in ("submit", "button", "file"):
            continue
        if field.name == "select":
            selected = field.find("option", selected=True)
            data[name] = selected.get("value", "") if selected else ""
        elif field.name == "textarea":
            data[name] = field.text.removeprefix("\n")
        elif field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data[name] = field.get("value", "on")
        else:
            data[name] = field.get("value", "")
    return data


def test_admin_price_change_reaches_search(search_index, settings, record_property):
    product = create_product(title="Rattan Basket", prices=["40.00"])
    reindex_catalog()
    settings.CDC_RELAY_MODE = "poll"
    settings.CDC_RELAY_IDLE_SECONDS = 0.05
    admin = get_user_model().objects.create_superuser("search-admin", "admin@example.test", "unused-password")
    browser = Client()
    browser.force_login(admin)
    form = admin_change_form(browser, product.pk)
    variant = ProductVariant.objects.get(product=product)
    assert form["variants-0-price"] == "40.00"
    form["variants-0-price"] = "44.00"
    form["_save"] = "Save"

    response = browser.post(f"/admin/catalog/product/{product.pk}/change/", form)
    committed_at = time.monotonic()
    assert response.status_code == 302, response.content[:2000]
    variant.refresh_from_db()
    assert variant.price == Decimal("44.00")

    run_command("run_cdc_relay", "--once")
    relayed_at = time.monotonic()
    # product.created (from create_product) and the admin's product.updated.
    run_command("run_consumer", "search-indexer", "--max-messages", "2")
    consumed_at = time.monotonic()
    searchable_at = None
    shopper_view = Client()
    while time.monotonic() - committed_at < SEARCH_LAG_DEADLINE_SECONDS:
        hits = shopper_view.get(SEARCH_URL, {"q": "rattan", "min_price": "44.00"}).json()["results"]
        if hits and hits[0]["price_min"] == "44.00":
            searchable_at = time.monotonic()
            break
        time.sleep(0.05)

    assert searchable_at is not None, f"not searchable at the new price within {SEARCH_LAG_DEADLINE_SECONDS} s"
    assert hits[0]["version"] == 2
    lag = searchable_at - committed_at
    record_property("search_lag_seconds", round(lag, 3))
    print(
        f"admin commit to searchable: {lag:.2f} s (relay {relayed_at - committed_at:.2f} s, "
        f"consumer incl. group join {consumed_at - relayed_at:.2f} s, "
        f"until visible {searchable_at - consumed_at:.2f} s)"
    )
