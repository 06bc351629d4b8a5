"""A stateful property test: random sequences of inventory operations, checked against a model after every step."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from commerce.errors import ConflictError, DomainError, NotFoundError
from inventory.models import Reservation, ReservationLine, StockItem, StockMovement
from inventory.selectors import stock_drift
from inventory.services import adjust, commit, expire_due, receive, release, reserve, restock

# GHOST never gets a stock row, so every operation also meets an unknown SKU.
SKUS = ["A", "B", "C", "GHOST"]
STOCKED = ["A", "B", "C"]

sku_lines = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=4)
# TTLs and clock steps are whole minutes. A reservation's expiry counts from the
# real time it was made, milliseconds after the model's clock started, so whole
# minutes make a replayed example expire the same reservations as the original.
ttls = st.sampled_from([timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=10)])


def merged(lines: list[tuple[str, int]]) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for sku, quantity in lines:
        quantities[sku] = quantities.get(sku, 0) + quantity
    return quantities


class InventoryMachine(RuleBasedStateMachine):
    """Drives the services and a plain-Python model of what they should have done."""

    references = Bundle("references")

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in its own transaction, rolled back in teardown, so
        # it starts from empty tables and no single transaction accumulates the
        # thousands of savepoints that a whole run of examples creates.
        self.example_transaction = transaction.atomic()
        self.example_transaction.__enter__()
        self.on_hand: dict[str, int] = {}
        self.reservations: dict[str, dict] = {}
        self.clock = timezone.now()
        self.next_reference = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.example_transaction.__exit__(None, None, None)

    # --- model -------------------------------------------------------------

    def reserved(self, sku: str) -> int:
        return sum(
            reservation["lines"].get(sku, 0)
            for reservation in self.reservations.values()
            if reservation["status"] == "active"
        )

    def available(self, sku: str) -> int:
        return self.on_hand.get(sku, 0) - self.reserved(sku)

    def reserve_and_check(self, reference: str, lines: list[tuple[str, int]], ttl: timedelta) -> None:
        quantities = merged(lines)
        existing = self.reservations.get(reference)

        if existing is not None and existing["status"] in ("released", "expired"):
            with pytest.raises(ConflictError) as excinfo:
                reserve(lines=lines, reference=reference, ttl=ttl)
            assert excinfo.value.code == f"reservation_{existing['status']}"
            return

        if existing is not None:
            if existing["lines"] != quantities:
                with pytest.raises(ConflictError) as excinfo:
                    reserve(lines=lines, reference=reference, ttl=ttl)
                assert excinfo.value.code == "reservation_mismatch"
                return
            reservation = reserve(lines=lines, reference=reference, ttl=ttl)
            assert reservation.status == existing["status"]
            assert reservation.expires_at == existing["expires_at"]
            return

        short = sorted(sku for sku, quantity in quantities.items() if quantity > self.available(sku))
        if short:
            with pytest.raises(ConflictError) as excinfo:
                reserve(lines=lines, reference=reference, ttl=ttl)
            assert excinfo.value.code == "out_of_stock"
            assert [line["sku"] for line in excinfo.value.extra["skus"]] == short
            return

        reservation = reserve(lines=lines, reference=reference, ttl=ttl)
        self.reservations[reference] = {
            "lines": quantities,
            "status": "active",
            "expires_at": reservation.expires_at,
        }

    # --- rules -------------------------------------------------------------

    @rule(target=references, lines=sku_lines, ttl=ttls)
    def reserve_new(self, lines, ttl):
        reference = f"ref-{self.next_reference}"
        self.next_reference += 1
        self.reserve_and_check(reference, lines, ttl)
        # Failed attempts go into the bundle too: they are references that never reserved.
        return reference

    @rule(reference=references, ttl=ttls)
    def reserve_retry(self, reference, ttl):
        known = self.reservations.get(reference)
        lines = sorted(known["lines"].items()) if known else [("A", 1)]
        self.reserve_and_check(reference, lines, ttl)

    @rule(reference=references, lines=sku_lines)
    def reserve_retry_other_lines(self, reference, lines):
        self.reserve_and_check(reference, lines, timedelta(minutes=2))

    @rule(reference=references)
    def commit_reservation(self, reference):
        known = self.reservations.get(reference)
        if known is None:
            with pytest.raises(NotFoundError) as excinfo:
                commit(reference=reference)
            assert excinfo.value.code == "reservation_not_found"
        elif known["status"] in ("released", "expired"):
            with pytest.raises(ConflictError) as excinfo:
                commit(reference=reference)
            assert excinfo.value.code == f"reservation_{known['status']}"
        else:
            if known["status"] == "active":
                for sku, quantity in known["lines"].items():
                    self.on_hand[sku] -= quantity
            known["status"] = "committed"
            assert commit(reference=reference).status == "committed"

    @rule(reference=references)
    def release_reservation(self, reference):
        known = self.reservations.get(reference)
        if known is None:
            assert release(reference=reference) is None
        elif known["status"] == "committed":
            with pytest.raises(ConflictError) as excinfo:
                release(reference=reference)
            assert excinfo.value.code == "reservation_committed"
        else:
            if known["status"] == "active":
                known["status"] = "released"
            assert release(reference=reference).status == known["status"]

    @rule(minutes=st.integers(0, 12), batch_size=st.integers(1, 4))
    def expire(self, minutes, batch_size):
        self.clock += timedelta(minutes=minutes)
        due = [
            known
            for known in self.reservations.values()
            if known["status"] == "active" and known["expires_at"] <= self.clock
        ]
        for known in due:
            known["status"] = "expired"
        assert expire_due(now=self.clock, batch_size=batch_size) == len(due)

    @rule(sku=st.sampled_from(SKUS), delta=st.integers(-6, 6).filter(bool))
    def adjust_stock(self, sku, delta):
        if sku not in self.on_hand:
            with pytest.raises(NotFoundError) as excinfo:
                adjust(sku=sku, delta=delta, reason="count", actor="machine")
            assert excinfo.value.code == "sku_not_found"
            return

        new_on_hand = self.on_hand[sku] + delta
        if new_on_hand < 0 or new_on_hand < self.reserved(sku):
            with pytest.raises(ConflictError) as excinfo:
                adjust(sku=sku, delta=delta, reason="count", actor="machine")
            expected = "on_hand_negative" if new_on_hand < 0 else "stock_below_reserved"
            assert excinfo.value.code == expected
            return

        self.on_hand[sku] = new_on_hand
        assert adjust(sku=sku, delta=delta, reason="count", actor="machine").on_hand == new_on_hand

    @rule(sku=st.sampled_from(STOCKED), quantity=st.integers(1, 5), returned=st.booleans())
    def add_stock(self, sku, quantity, returned):
        self.on_hand[sku] = self.on_hand.get(sku, 0) + quantity
        add = restock if returned else receive
        assert add(sku=sku, quantity=quantity, reason="delivery", actor="machine").on_hand == self.on_hand[sku]

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(-1, 0))
    def receive_invalid(self, sku, quantity):
        with pytest.raises(DomainError) as excinfo:
            receive(sku=sku, quantity=quantity, reason="delivery", actor="machine")
        assert excinfo.value.code == "invalid_quantity"

    # --- invariants ----------------------------------------------------------

    @invariant()
    def counters_match_model(self):
        stored = {item.sku: (item.on_hand, item.reserved) for item in StockItem.objects.all()}
        assert stored == {sku: (on_hand, self.reserved(sku)) for sku, on_hand in self.on_hand.items()}

    @invariant()
    def statuses_match_model(self):
        stored = dict(Reservation.objects.values_list("reference", "status"))
        assert stored == {reference: known["status"] for reference, known in self.reservations.items()}

    @invariant()
    def no_drift(self):
        # Recomputes reserved from active reservations and on_hand from the ledger.
        assert stock_drift() == []


@pytest.mark.django_db(transaction=True)
# A pass takes seconds, but shrinking a failure replays hundreds of examples
# and took 2 to 4 minutes on a 2-core machine, close to the suite's 300 s default timeout.
@pytest.mark.timeout(900)
def test_inventory_state_machine():
    run_state_machine_as_test(
        InventoryMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
