"""The audit trail (``node.audit``): append-only, restart-safe, paged, and holding ids only."""

from __future__ import annotations

from node.audit import MAX_SCAN, AuditLog

ALICE, BOB = bytes([1]) * 32, bytes([2]) * 32
STAFF, OFFICER = bytes([3]) * 32, bytes([4]) * 32


def fill(log: AuditLog, n: int, customer: bytes = ALICE) -> None:
    for _ in range(n):
        log.record(signer=STAFF, role="staff", customer=customer, record="customer-data",
                   route="GET /v1/vault/customers/{id}", outcome="ok")


def test_records_survive_a_restart_in_order_with_signer_customer_route_and_outcome(tmp_path):
    log = AuditLog(tmp_path, clock_ms=lambda: 1234)
    fill(log, 2)
    log.record(signer=OFFICER, role="compliance", customer=BOB, record="text:" + "ab" * 32,
               route="GET /v1/vault/texts/{commitment}", outcome="customer_erased")
    log.close()
    again = AuditLog(tmp_path)
    records, cursor = again.list()
    assert cursor is None and [r.seq for r in records] == [1, 2, 3]
    last = records[-1].to_json()
    assert last == {"seq": 3, "time_ms": 1234, "signer": OFFICER.hex(), "role": "compliance", "customer": BOB.hex(),
                    "record": "text:" + "ab" * 32, "route": "GET /v1/vault/texts/{commitment}",
                    "outcome": "customer_erased"}


def test_a_crash_mid_append_loses_only_the_torn_record_and_appends_continue(tmp_path):
    log = AuditLog(tmp_path)
    fill(log, 3)
    log.close()
    path = tmp_path / "audit.log"
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x40torn")  # a header promising 64 bytes, then the crash
    again = AuditLog(tmp_path)
    assert len(again) == 3 and path.stat().st_size == size
    fill(again, 1, BOB)
    again.close()
    records, _ = AuditLog(tmp_path).list()
    assert [r.customer for r in records] == [ALICE] * 3 + [BOB]


def test_a_flipped_byte_is_not_read_as_a_record(tmp_path):
    log = AuditLog(tmp_path)
    fill(log, 2)
    log.close()
    path = tmp_path / "audit.log"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert len(AuditLog(tmp_path)) == 1


def test_listing_filters_by_customer_and_pages_with_a_cursor(tmp_path):
    log = AuditLog(tmp_path)
    for i in range(10):
        fill(log, 1, ALICE if i % 2 else BOB)
    page, cursor = log.list(ALICE, since=0, limit=3)
    assert [r.seq for r in page] == [2, 4, 6] and cursor == 6
    page, cursor = log.list(ALICE, since=cursor, limit=3)
    assert [r.seq for r in page] == [8, 10] and cursor is None


def test_a_filtered_listing_scans_a_bounded_number_of_records(tmp_path, monkeypatch):
    monkeypatch.setattr("node.audit.MAX_SCAN", 5)
    log = AuditLog(tmp_path)
    fill(log, 8, BOB)
    page, cursor = log.list(ALICE, limit=10)
    assert page == [] and cursor == 5  # stopped after 5 records; the client continues from there
    assert MAX_SCAN >= 10_000
