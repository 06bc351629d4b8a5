"""The search indexer's handler against the real OpenSearch and PostgreSQL: versions, tombstones, outages."""
from __future__ import annotations

import random

import pytest

from catalog.consumers import apply_product_event
from catalog.models import Product
from catalog.search.client import SearchUnavailable, search_client, search_config
from catalog.search.documents import build_actions
from catalog.search.drift import check_search_drift
from catalog.search.indexer import EXTERNAL_GTE, SearchIndexError, WriteOutcome, index_products, write_actions
from catalog.services import product_delete
from cdc.consumers.base import InvalidEvent
from cdc.envelope import Envelope
from inventory import services as inventory
from tests.catalog.test_search_support import (  # noqa: F401 - fixtures are found by name
    alias_targets,
    change_price,
    closed_port_url,
    create_product,
    indexed,
    product_envelopes,
    refresh,
    search_ids,
    search_index,
    search_prefix,
    set_published,
)
from tests.factories import VariantFactory, make_category

pytestmark = pytest.mark.django_db


def test_document_carries_catalog_fields(search_index):
    category = make_category("Apparel", "Shirts")
    product = create_product(title="Linen Shirt", category=category, prices=["12.50", "19.00"])
    product.body_text = "Breathable summer shirt."
    product.tags = ["summer", "linen"]
    product.save(update_fields=["body_text", "tags"])
    small, large = product.variants.order_by("position")
    small.option1_name, small.option1_value = "Size", "S"
    small.save()
    large.option1_name, large.option1_value = "Size", "L"
    large.save()
    inventory.receive(sku=large.sku, quantity=3, reason="test stock", actor="tests")

    outcome = apply_product_event(product_envelopes(product.pk)[-1])

    assert outcome is WriteOutcome.INDEXED
    stored = indexed(product.pk)
    document = stored["_source"]
    assert stored["_version"] == product.version == 1
    assert document["name"] == "Linen Shirt"
    assert document["description"] == "Breathable summer shirt."
    assert document["tags"] == ["summer", "linen"]
    assert document["category_path"] == ["Apparel", "Shirts"]
    assert document["category_slugs"] == ["apparel", "apparel-shirts"]
    assert document["category_slug"] == "apparel-shirts"
    assert document["skus"] == [small.sku, large.sku]
    assert document["options"] == [{"name": "Size", "value": "S"}, {"name": "Size", "value": "L"}]
    assert (document["price_min"], document["price_max"]) == ("12.50", "19.00")
    assert document["in_stock"] is True
    assert document["published"] is True
    assert document["version"] == 1


def test_replay_out_of_order_ends_newest(search_index):
    product = create_product(title="Wool Scarf", prices=["20.00"])
    for price in ("21.00", "22.00", "23.00"):
        change_price(product, price)
    envelopes = product_envelopes(product.pk)
    assert [envelope.aggregate_version for envelope in envelopes] == [1, 2, 3, 4]

    # Every event twice, in a shuffled order that puts the newest one first.
    replay = envelopes + envelopes
    random.Random(7).shuffle(replay)
    replay.remove(envelopes[-1])
    replay.insert(0, envelopes[-1])
    outcomes = [apply_product_event(envelope) for envelope in replay]

    assert outcomes[0] is WriteOutcome.INDEXED
    assert set(outcomes[1:]) == {WriteOutcome.OLDER}
    stored = indexed(product.pk)
    assert stored["_version"] == 4
    assert stored["_source"]["price_min"] == "23.00"


def test_older_write_is_noop(search_index):
    product = create_product(title="Canvas Tote", prices=["30.00"])
    snapshots = [build_actions([product.pk])[0]]
    for price in ("31.00", "32.00"):
        change_price(product, price)
        snapshots.append(build_actions([product.pk])[0])
    assert [snapshot.version for snapshot in snapshots] == [1, 2, 3]

    # A slow writer that read PostgreSQL at an older version writes after a faster one.
    assert write_actions([snapshots[2]]) == {product.pk: WriteOutcome.INDEXED}
    assert write_actions([snapshots[0]]) == {product.pk: WriteOutcome.OLDER}
    assert write_actions([snapshots[1]]) == {product.pk: WriteOutcome.OLDER}
    assert write_actions([snapshots[2]]) == {product.pk: WriteOutcome.OLDER}

    stored = indexed(product.pk)
    assert stored["_version"] == 3
    assert stored["_source"]["price_min"] == "32.00"


def test_unpublish_leaves_tombstone_at_version(search_index, api_client):
    product = create_product(title="Desk Lamp", prices=["45.00"])
    apply_product_event(product_envelopes(product.pk)[-1])
    refresh()
    assert search_ids(api_client, q="lamp") == [product.pk]

    version = set_published(product, False)
    outcome = apply_product_event(product_envelopes(product.pk)[-1])

    assert product_envelopes(product.pk)[-1].type == "product.unpublished"
    assert outcome is WriteOutcome.REMOVED
    stored = indexed(product.pk)
    assert stored["_version"] == version == 2
    assert stored["_source"]["published"] is False
    refresh()
    assert search_ids(api_client, q="lamp") == []


def test_delete_leaves_tombstone_at_version(search_index, api_client):
    product = create_product(title="Floor Lamp", prices=["80.00"])
    change_price(product, "85.00")
    apply_product_event(product_envelopes(product.pk)[-1])
    envelopes_before = product_envelopes(product.pk)

    product_delete(product_id=product.pk)
    deleted = product_envelopes(product.pk)[-1]
    outcome = apply_product_event(deleted)

    assert deleted.type == "product.deleted"
    assert outcome is WriteOutcome.REMOVED
    stored = indexed(product.pk)
    assert stored["_version"] == deleted.aggregate_version == 3
    assert stored["_source"]["published"] is False
    # The older events, replayed after the delete, change nothing.
    assert [apply_product_event(envelope) for envelope in envelopes_before] == [WriteOutcome.OLDER] * 2
    refresh()
    assert search_ids(api_client, q="lamp") == []


def test_late_update_never_revives_product(search_index, api_client):
    # With gc_deletes at 0, OpenSearch drops a deleted document's version at
    # once, so only the tombstone can reject the late write.
    for index in alias_targets():
        search_client().indices.put_settings(index=index, body={"index": {"gc_deletes": "0s"}})
    unpublished = create_product(title="Garden Chair", prices=["60.00"])
    deleted = create_product(title="Garden Table", prices=["150.00"])
    late_writes = []
    for product in (unpublished, deleted):
        apply_product_event(product_envelopes(product.pk)[-1])
        # What a slow writer read while the product was still published.
        late_writes.append(build_actions([product.pk])[0])
    late_events = [product_envelopes(product.pk)[-1] for product in (unpublished, deleted)]

    set_published(unpublished, False)
    product_delete(product_id=deleted.pk)
    for product_id in (unpublished.pk, deleted.pk):
        apply_product_event(product_envelopes(product_id)[-1])

    assert write_actions(late_writes) == {unpublished.pk: WriteOutcome.OLDER, deleted.pk: WriteOutcome.OLDER}
    assert [apply_product_event(envelope) for envelope in late_events] == [WriteOutcome.OLDER] * 2
    refresh()
    assert search_ids(api_client, q="garden") == []
    assert indexed(unpublished.pk)["_source"]["published"] is False
    assert indexed(deleted.pk)["_source"]["published"] is False


def test_availability_refresh_keeps_version(search_index):
    product = create_product(title="Steel Bottle", prices=["25.00"])
    sku = product.variants.get().sku
    inventory.receive(sku=sku, quantity=1, reason="test stock", actor="tests")
    apply_product_event(product_envelopes(product.pk)[-1])
    assert indexed(product.pk)["_source"]["in_stock"] is True

    inventory.adjust(sku=sku, delta=-1, reason="damaged", actor="tests")
    # The catalog event at the same version is rejected: strict external versioning.
    assert apply_product_event(product_envelopes(product.pk)[-1]) is WriteOutcome.OLDER
    assert index_products([product.pk], version_type=EXTERNAL_GTE) == {product.pk: WriteOutcome.INDEXED}

    stored = indexed(product.pk)
    assert stored["_version"] == 1
    assert stored["_source"]["in_stock"] is False


def test_availability_refresh_rejects_older(search_index):
    product = create_product(title="Glass Jar", prices=["8.00"])
    old = build_actions([product.pk])[0]
    change_price(product, "9.00")
    apply_product_event(product_envelopes(product.pk)[-1])

    assert write_actions([old], version_type=EXTERNAL_GTE) == {product.pk: WriteOutcome.OLDER}
    assert indexed(product.pk)["_source"]["price_min"] == "9.00"


def test_missing_alias_is_bootstrapped(search_prefix):
    product = create_product(title="Clay Pot", prices=["14.00"])

    outcome = apply_product_event(product_envelopes(product.pk)[-1])

    assert outcome is WriteOutcome.INDEXED
    targets = alias_targets()
    assert len(targets) == 1
    aliases = search_client().indices.get_alias(name=search_config().alias)
    assert aliases[targets[0]]["aliases"][search_config().alias]["is_write_index"] is True
    assert indexed(product.pk)["_version"] == 1


def test_invalid_product_id_rejected(search_index):
    envelope = Envelope(
        event_id="5c3a2a52-5a55-4c4b-9d5e-0d7c4e8f3a11",
        type="product.updated",
        version=1,
        aggregate_type="product",
        aggregate_id="not-a-number",
        aggregate_version=2,
        occurred_at="2025-03-01T12:00:00+00:00",
        payload={},
    )

    with pytest.raises(InvalidEvent, match="not a product id"):
        apply_product_event(envelope)


def test_outage_then_handler_catches_up(search_index, settings, api_client):
    kept = create_product(title="Oak Shelf", prices=["70.00"])
    hidden = create_product(title="Oak Stool", prices=["40.00"])
    removed = create_product(title="Oak Bench", prices=["90.00"])
    for product in (kept, hidden, removed):
        apply_product_event(product_envelopes(product.pk)[-1])
    working_url = settings.OPENSEARCH_URL

    settings.OPENSEARCH_URL = closed_port_url()
    change_price(kept, "75.00")
    set_published(hidden, False)
    product_delete(product_id=removed.pk)
    added = create_product(title="Oak Table", prices=["300.00"])
    pending = [product_envelopes(product.pk)[-1] for product in (kept, hidden, removed, added)]
    for envelope in pending:
        with pytest.raises(SearchUnavailable):
            apply_product_event(envelope)

    settings.OPENSEARCH_URL = working_url
    before = check_search_drift(repair=False).found
    assert (len(before.missing), len(before.stale), len(before.orphans)) == (1, 1, 2)
    for envelope in pending:
        apply_product_event(envelope)

    after = check_search_drift(repair=False).found
    assert after.drift_count == 0
    assert after.products == Product.objects.filter(published=True).count() == 2
    refresh()
    assert sorted(search_ids(api_client, q="oak")) == sorted([kept.pk, added.pk])
    assert indexed(kept.pk)["_source"]["price_min"] == "75.00"


def test_variant_change_reindexes_skus(search_index):
    product = create_product(title="Cotton Socks", prices=["6.00"])
    apply_product_event(product_envelopes(product.pk)[-1])
    extra = VariantFactory(product=product, price="7.00", position=2)
    change_price(product, "6.50")

    apply_product_event(product_envelopes(product.pk)[-1])

    document = indexed(product.pk)["_source"]
    assert extra.sku in document["skus"]
    assert (document["price_min"], document["price_max"]) == ("6.50", "6.50")


def test_rejected_document_raises(search_index):
    product = create_product(title="Linen Pillow", prices=["16.00"])
    action = build_actions([product.pk])[0]
    # The mapping is strict, so a field it does not declare is rejected, and no retry can fix that.
    action.document["colour"] = "blue"

    with pytest.raises(SearchIndexError, match="strict_dynamic_mapping_exception"):
        write_actions([action])
    assert indexed(product.pk) is None
