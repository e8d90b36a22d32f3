"""The escalation KPIs aggregated by each database equal the figures worked out by hand."""

from __future__ import annotations

from daemon.clock import ManualClock, to_datetime
from daemon.domain.gate import Phase
from daemon.reporting import load_report
from daemon.settings import Settings
from daemon.store import Changes, Store
from tests.kpi_month import EXPECTED, NOW_S, _row, seed
from tests.support import START


async def test_the_kpis_of_a_hand_checked_month(store: Store, clock: ManualClock) -> None:
    await seed(store, START)
    clock.advance(NOW_S)
    report = await load_report(store, to_datetime(START - 86400), to_datetime(START + NOW_S),
                               settings=Settings())
    assert report.kpis is not None
    assert report.kpis.model_dump(mode="json") == EXPECTED


async def test_without_settings_the_report_has_no_kpis(store: Store) -> None:
    await seed(store, START)
    report = await load_report(store, to_datetime(START), to_datetime(START + NOW_S))
    assert report.kpis is None


async def test_an_empty_period_meets_no_target(store: Store) -> None:
    report = await load_report(store, to_datetime(START), to_datetime(START + 60),
                               settings=Settings())
    assert report.kpis is not None
    kpis = report.kpis
    assert kpis.reopen_rate.share is None and kpis.reopen_rate.meets is None
    assert kpis.update_cadence.share_within is None and kpis.update_cadence.meets is None
    assert [a.meets for a in kpis.time_to_acknowledge] == [None]


async def test_a_customer_spelled_differently_is_still_a_repeat_customer(
        store: Store, clock: ManualClock) -> None:
    """Support types the customer by hand: "Acme Corp", "ACME  corp" and "acme corp " are one
    customer (as the policy's `customer` condition reads them), shown as most often written."""
    for n, (customer, service) in enumerate((("Acme Corp", "Checkout"),
                                             ("ACME  corp", "checkout"),
                                             ("Acme Corp", "CHECKOUT"), ("Globex", "Billing"),
                                             ("acme corp ", "Checkout"))):
        row = _row(f"R{n}", START + n * 60, Phase.RFH, "rfh", "S3", customer,
                   {"Service": service})
        await store.apply(Changes(escalation=row))
    clock.advance(3600)
    report = await load_report(store, to_datetime(START - 60), to_datetime(START + 3600),
                               settings=Settings())
    assert report.kpis is not None
    assert [(c.name, c.count) for c in report.kpis.repeat_customers] == [("Acme Corp", 4)]
    assert [(s.name, s.count) for s in report.kpis.top_services] == [("Checkout", 4),
                                                                     ("Billing", 1)]
