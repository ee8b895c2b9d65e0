"""The hash chain of the audit log: canonical form, append under the chain's lock, verification.

Each org's events form one chain, and the events without an org another. An event's ``hash`` is the SHA-256 (hex)
of its canonical JSON::

    {"details": {...}, "email": "...", "event": "ROLE_CHANGED", "ipAddress": "203.0.113.7" | null,
     "mfaUsed": false, "org": "42" | null, "prevHash": "<64 hex>", "sessionId": "...",
     "target": {"id": "...", "repr": "...", "type": "..."}, "timestamp": "2025-01-31T12:00:00.000000Z",
     "userAgent": "...", "userId": "3" | null}

serialized with sorted keys, no spaces, ASCII only (``json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)``), floats that are whole numbers written as integers. ``prevHash`` is the previous event's
``hash`` in the chain, 64 zeros for the first one (or the head's anchor once the purge removed older events).

:func:`append` numbers, hashes and inserts one event while holding the chain's head row
(``twig_audit_chain_heads``): ``UPDATE … SET seq = seq + 1 … RETURNING seq, hash`` takes the row lock and the next
position in one statement, the event is inserted, and the head's hash is set; three statements, inside the caller's
transaction, so the event and the change it records commit or roll back together, and concurrent appends to one
chain queue on that row (PostgreSQL row lock; SQLite serializes writers anyway).

:func:`verify_chain` walks a chain in ``seq`` order and names its first broken link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Q

from twig_auth.audit.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
ORGLESS = "orgless"
WALK_BATCH = 2000


def chain_key(org_id: Any) -> str:
    """The head-row key of the chain ``org_id`` belongs to (``None``: the org-less chain)."""
    return ORGLESS if org_id is None else f"org:{org_id}"


def _plain(value: Any) -> Any:
    """JSON-native value with whole floats as ints, so the form read back (PostgreSQL jsonb keeps ``1e20`` as an
    integer) hashes like the one written."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def canonical(row: Any, prev_hash: str) -> bytes:
    """The bytes hashed for ``row`` (an :class:`AuditEvent`, or a historical model in a migration)."""
    doc = {
        "prevHash": prev_hash,
        "timestamp": _timestamp(row.timestamp),
        "event": row.event,
        "org": _text(row.org_id),
        "userId": _text(row.user_id),
        "email": row.email,
        "ipAddress": row.ip_address or None,
        "userAgent": row.user_agent,
        "mfaUsed": bool(row.mfa_used),
        "sessionId": row.session_id,
        "target": {"type": row.target_type, "id": row.target_id, "repr": row.target_repr},
        "details": _plain(row.details),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def compute_hash(row: Any, prev_hash: str) -> str:
    return hashlib.sha256(canonical(row, prev_hash)).hexdigest()


# --- append ------------------------------------------------------------------------------------------------


def _advance(using: str, key: str, org_id: Any) -> tuple[int, str]:
    """Lock the chain's head, move it one position on; return ``(seq, previous hash)``."""
    connection = connections[using]
    qn = connection.ops.quote_name
    table = qn(AuditChainHead._meta.db_table)
    seq, hash_, chain = qn("seq"), qn("hash"), qn("chain")
    sql = f"UPDATE {table} SET {seq} = {seq} + 1 WHERE {chain} = %s RETURNING {seq}, {hash_}"  # noqa: S608 (names)
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        # The chain's first event: create its head (a concurrent first append may win; then ours is a no-op).
        AuditChainHead.objects.using(using).bulk_create(
            [AuditChainHead(chain=key, org_id=org_id, seq=0, hash=GENESIS, anchor_seq=0, anchor_hash=GENESIS)],
            ignore_conflicts=True)
    raise RuntimeError(f"audit chain head {key!r} could not be created")  # pragma: no cover


def append(entry: AuditEvent) -> AuditEvent:
    """Give ``entry`` its chain position and hash and insert it, under the chain's lock (see the module doc)."""
    using = router.db_for_write(AuditEvent)
    key = chain_key(entry.org_id)
    # No savepoint: a failure here must fail the caller's transaction (no change without its event).
    with transaction.atomic(using=using, savepoint=False):
        entry.seq, entry.prev_hash = _advance(using, key, entry.org_id)
        entry.hash = compute_hash(entry, entry.prev_hash)
        entry.save(using=using, force_insert=True)
        AuditChainHead.objects.using(using).filter(chain=key).update(hash=entry.hash)
    return entry


# --- verify ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first broken link of a chain."""

    problem: str            # "changed", "missing" or "reordered"
    message: str
    event_id: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = f"event id={self.event_id} seq={self.seq}: " if self.event_id is not None else \
            (f"seq={self.seq}: " if self.seq is not None else "")
        return f"{where}{self.problem}: {self.message}"


@dataclass(frozen=True)
class ChainReport:
    chain: str
    org_id: Any
    checked: int
    first_seq: int | None
    last_seq: int | None
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def chain_events(org_id: Any, using: str | None = None) -> Any:
    qs = AuditEvent.objects.using(using or router.db_for_read(AuditEvent))
    return qs.filter(org__isnull=True) if org_id is None else qs.filter(org_id=org_id)


_FIELDS = ("id", "seq", "prev_hash", "hash", "timestamp", "event", "org_id", "user_id", "email", "ip_address",
           "user_agent", "mfa_used", "session_id", "target_type", "target_id", "target_repr", "details")


def _walk(org_id: Any, after: int, upto: int) -> Iterator[AuditEvent]:
    """The chain's events with ``after < seq <= upto`` in ``(seq, id)`` order, read in keyset batches."""
    events = chain_events(org_id).filter(seq__lte=upto).only(*_FIELDS).order_by("seq", "id")
    batch = list(events.filter(seq__gt=after)[:WALK_BATCH])
    while batch:
        yield from batch
        last = batch[-1]
        batch = list(events.filter(Q(seq__gt=last.seq) | Q(seq=last.seq, id__gt=last.pk))[:WALK_BATCH])


def verify_chain(org_id: Any, head: AuditChainHead | None = None) -> ChainReport:
    """Walk the chain of ``org_id`` (None: the org-less chain) and report its first broken link."""
    key = chain_key(org_id)
    head = head or AuditChainHead.objects.filter(chain=key).first()
    events = chain_events(org_id)
    if head is None:
        first = events.order_by("seq", "id").first()
        broken = None if first is None else Break("missing", "the chain's head row is missing", first.pk, first.seq)
        return ChainReport(key, org_id, 0, None, None, broken)
    expected_seq, expected_prev = head.anchor_seq + 1, head.anchor_hash
    previous: AuditEvent | None = None
    checked = 0
    first_seq: int | None = None
    for row in _walk(org_id, head.anchor_seq, head.seq):
        broken = _check(row, previous, expected_seq, expected_prev, org_id)
        if broken is not None:
            return ChainReport(key, org_id, checked, first_seq, previous.seq if previous else None, broken)
        checked += 1
        first_seq = row.seq if first_seq is None else first_seq
        previous, expected_seq, expected_prev = row, row.seq + 1, row.hash
    last = previous.seq if previous is not None else head.anchor_seq
    if last != head.seq:
        return ChainReport(key, org_id, checked, first_seq, previous.seq if previous else None, Break(
            "missing", f"events {last + 1}–{head.seq} are missing at the end of the chain (the head is at "
            f"{head.seq})", None, last + 1))
    if expected_prev != head.hash:
        return ChainReport(key, org_id, checked, first_seq, last, Break(
            "changed", "the head's hash does not match the last event's hash",
            previous.pk if previous else None, last))
    return ChainReport(key, org_id, checked, first_seq, last if checked else None, None)


def _check(row: AuditEvent, previous: AuditEvent | None, expected_seq: int, expected_prev: str,
           org_id: Any) -> Break | None:
    if previous is not None and row.seq == previous.seq:
        return Break("reordered", f"two events hold position {row.seq} (the other is event id={previous.pk})",
                     row.pk, row.seq)
    if compute_hash(row, row.prev_hash) != row.hash:
        return Break("changed", "its content does not match its hash", row.pk, row.seq)
    if row.prev_hash != expected_prev:
        other = chain_events(org_id).filter(hash=row.prev_hash).exclude(pk=row.pk).values_list("pk", "seq").first()
        if other is not None:
            return Break("reordered", f"it was chained after event id={other[0]} (seq {other[1]}), not after the "
                         "event before it", row.pk, row.seq)
        if row.seq > expected_seq:
            span = str(expected_seq) if row.seq == expected_seq + 1 else f"{expected_seq}–{row.seq - 1}"
            return Break("missing", f"the event(s) before it (seq {span}) are missing", row.pk, row.seq)
        before = f"event id={previous.pk}, seq {previous.seq}" if previous is not None else \
            f"the purge anchor, seq {expected_seq - 1}"
        return Break("changed", f"it was not chained after the link before it ({before}): that event was "
                     "rewritten, or events were removed and the rest renumbered", row.pk, row.seq)
    if row.seq != expected_seq:
        return Break("changed", f"its seq is {row.seq}, {expected_seq} was expected", row.pk, row.seq)
    return None


def chains(org_id: Any = ..., *, orgless: bool = True) -> list[tuple[Any, AuditChainHead | None]]:
    """Every chain as ``(org_id, head)``: chains with a head row, and chains with events but no head."""
    heads = AuditChainHead.objects.all()
    if org_id is not ...:
        heads = heads.filter(chain=chain_key(org_id))
    found: dict[Any, AuditChainHead | None] = {h.org_id if h.chain != ORGLESS else None: h for h in heads}
    if org_id is ...:
        for value in AuditEvent.objects.order_by().values_list("org_id", flat=True).distinct():
            found.setdefault(value, None)
    else:
        found.setdefault(org_id, None)
    if not orgless:
        found.pop(None, None)
    return sorted(found.items(), key=lambda item: (item[0] is not None, str(item[0])))
