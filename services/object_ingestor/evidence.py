"""State of the document evidence stream (pure): document records and claims/policies CDC in; links and alerts out.

Fed by `evidence_runner.py` from `claims.documents.v1`, `claims.cdc.claims.v1` and `claims.cdc.policies.v1` in any
interleaving. Every input marks the documents it may affect as dirty (a document that arrived; documents naming a
claim or policy that changed; documents linked to a claim that changed); `collect` re-links the dirty documents
(linking.py) and re-runs the photo rules on them (photo_rules.py). A document nothing links stays unlinked, is
counted, and is re-linked when a claim or policy it names arrives.

Two-phase output as in telematics_scorer's FraudMatcher: `collect` returns links and alerts without forgetting
the dirty documents; `confirm` does, once the broker acknowledged them. Links and alert ids already on their
topics (read back at start-up: `mark_published_*`) are never published again, so a restart that rebuilds this
state from the topics repeats nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from claims_shared.contracts.cdc import canonical_json
from claims_shared.contracts.fraud import alert_id
from services.object_ingestor.config import DocumentRulesConfig
from services.object_ingestor.extracts import EXTRACT_FORMATS
from services.object_ingestor.invoices import normalise_claim_number
from services.object_ingestor.linking import (
    ClaimDirectory,
    ClaimFacts,
    Link,
    LinkHints,
    claim_number_from_key,
    link_document,
)
from services.object_ingestor.photo_rules import (
    PHOTO_REUSED,
    Finding,
    PhashIndex,
    PhotoFacts,
    far_from_loss,
    reused_across_claims,
    taken_before_loss,
)

SOURCE = "object_ingestor"
UNLINKED = "unlinked"


@dataclass(frozen=True)
class _Document:
    document_id: str
    mime_type: str
    sha256: str
    source_key: str | None
    hints: LinkHints
    photo: PhotoFacts | None


@dataclass
class Collected:
    """Outputs of one `collect`: publish them, then `confirm` this object."""

    documents: frozenset[str]
    links: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


class DocumentEvidence:
    def __init__(self, config: DocumentRulesConfig | None = None, *, incoming_prefix: str = "incoming/") -> None:
        self.config = config or DocumentRulesConfig()
        self.incoming_prefix = incoming_prefix
        self.counters: Counter = Counter()
        self.claims = ClaimDirectory()
        self._docs: dict[str, _Document] = {}
        self._links: dict[str, Link] = {}                       # current link of each linked document
        self._docs_of_claim: dict[str, set[str]] = {}           # claim_id -> documents linked to it
        self._docs_naming_claim: dict[str, set[str]] = {}       # claim number (content or key) -> documents
        self._docs_naming_policy: dict[str, set[str]] = {}      # policy number -> documents
        self._photos = PhashIndex()
        self._dirty: set[str] = set()
        self._published_links: dict[str, tuple[str | None, str]] = {}   # document -> (claim_id, method)
        self._published_alerts: set[str] = set()

    # -- inputs -------------------------------------------------------------------------------------------------
    def add_document(self, record: Mapping[str, Any]) -> None:
        """A document record (`DocumentRecord.to_dict()` shape, as decode_document_record returns it)."""
        document_id = record["document_id"]
        if record.get("mime_type") in EXTRACT_FORMATS:
            self.counters["documents_extracts"] += 1   # many claims per file: expanded row by row, not linked
            return
        if document_id in self._docs:
            self.counters["documents_repeated"] += 1   # a redelivered notification: same id, same content
            return
        fields = record.get("fields") or {}
        source = record.get("source") or {}
        loss_date = fields.get("loss_date")
        hints = LinkHints(
            claim_number=normalise_claim_number(fields.get("claim_number")),
            policy_number=normalise_claim_number(fields.get("policy_number")),
            loss_date=date.fromisoformat(loss_date) if isinstance(loss_date, str) else loss_date,
            key_claim_number=claim_number_from_key(source.get("key"), self.incoming_prefix),
        )
        doc = _Document(document_id, record.get("mime_type", ""), record.get("sha256", ""), source.get("key"),
                        hints, PhotoFacts.from_record(record))
        self._docs[document_id] = doc
        for number in {hints.claim_number, hints.key_claim_number} - {None}:
            self._docs_naming_claim.setdefault(number, set()).add(document_id)  # type: ignore[arg-type]
        if hints.policy_number:
            self._docs_naming_policy.setdefault(hints.policy_number, set()).add(document_id)
        if doc.photo is not None:
            self._photos.add(document_id, doc.photo.phash)
        self._dirty.add(document_id)
        self.counters["documents"] += 1

    def add_claim_change(self, change: Mapping[str, Any]) -> None:
        """A decoded `claims.cdc.claims.v1` change."""
        before, after = self.claims.apply_claim_change(change)
        for claim in (before, after):
            if claim is None:
                continue
            self._dirty |= self._docs_of_claim.get(claim.claim_id, set())
            if claim.claim_number:
                self._dirty |= self._docs_naming_claim.get(claim.claim_number, set())
            policy_number = self.claims.policy_number_of(claim)
            if policy_number:
                self._dirty |= self._docs_naming_policy.get(policy_number, set())
        if change["op"] == "t":
            self._dirty |= set(self._links)
        self.counters["claim_changes"] += 1

    def add_policy_change(self, change: Mapping[str, Any]) -> None:
        """A decoded `claims.cdc.policies.v1` change."""
        before, after = self.claims.apply_policy_change(change)
        for number in {before, after} - {None}:
            self._dirty |= self._docs_naming_policy.get(number, set())  # type: ignore[arg-type]
        self.counters["policy_changes"] += 1

    def mark_published_links(self, links: Mapping[str, tuple[str | None, str]]) -> None:
        """document_id -> (claim_id, method) of the latest link record per document on the links topic."""
        self._published_links.update(links)

    def mark_published_alerts(self, alert_ids: Iterable[str]) -> None:
        self._published_alerts.update(alert_ids)

    # -- decisions ----------------------------------------------------------------------------------------------
    def collect(self, now_ms: int) -> Collected:
        """Re-link the dirty documents and re-run the rules on them; new links and alerts (see `confirm`)."""
        out = Collected(frozenset(self._dirty))
        for document_id in sorted(out.documents):
            doc = self._docs[document_id]
            link = link_document(doc.hints, self.claims, loss_date_slack_days=self.config.loss_date_slack_days)
            self._set_link(document_id, link)
            published = self._published_links.get(document_id)
            current = (link.claim_id, link.method) if link else None
            if current is not None and current != published:
                out.links.append(self._link_record(doc, link))
            elif current is None and published is not None and published[0] is not None:
                out.links.append(self._link_record(doc, None))   # its claim is gone
        alerts: dict[str, dict[str, Any]] = {}
        for document_id in sorted(out.documents):
            for claim, finding in self._findings(document_id):
                record = self._alert(claim, finding, now_ms)
                if record["alert_id"] not in self._published_alerts:
                    alerts.setdefault(record["alert_id"], record)
        out.alerts = list(alerts.values())
        return out

    def confirm(self, collected: Collected) -> None:
        """`collected`'s outputs were acknowledged by the broker: forget those documents as dirty."""
        self._dirty -= collected.documents
        for link in collected.links:
            self._published_links[link["document_id"]] = (link["claim_id"], link["method"])
            self.counters[f"links_{link['method']}"] += 1
        for alert in collected.alerts:
            self._published_alerts.add(alert["alert_id"])
            self.counters["alerts"] += 1
            self.counters[f"alerts_{alert['rule']}"] += 1

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def link_of(self, document_id: str) -> Link | None:
        return self._links.get(document_id)

    def gauges(self) -> dict[str, int]:
        """Documents by current link method, unlinked ones, photos indexed."""
        by_method = Counter(link.method for link in self._links.values())
        return {"documents_known": len(self._docs), "documents_unlinked": len(self._docs) - len(self._links),
                **{f"documents_linked_by_{m}": n for m, n in sorted(by_method.items())},
                "photos_indexed": len(self._photos), "claims_known": len(self.claims.claims)}

    # -- internals ----------------------------------------------------------------------------------------------
    def _set_link(self, document_id: str, link: Link | None) -> None:
        old = self._links.get(document_id)
        if old is not None:
            self._docs_of_claim.get(old.claim_id, set()).discard(document_id)
        if link is None:
            self._links.pop(document_id, None)
        else:
            self._links[document_id] = link
            self._docs_of_claim.setdefault(link.claim_id, set()).add(document_id)

    def _findings(self, document_id: str) -> list[tuple[ClaimFacts, Finding]]:
        doc = self._docs[document_id]
        link = self._links.get(document_id)
        if doc.photo is None or link is None:
            return []
        claim = self.claims.claims.get(link.claim_id)
        if claim is None:
            return []
        found: list[tuple[ClaimFacts, Finding]] = []
        for rule in (taken_before_loss, far_from_loss):
            finding = rule(doc.photo, claim, self.config)
            if finding is not None:
                found.append((claim, finding))
        for other_id, distance in self._photos.near(doc.photo.phash, self.config.phash_max_distance):
            other_link = self._links.get(other_id)
            if other_id == document_id or other_link is None or other_link.claim_id == claim.claim_id:
                continue
            other_claim = self.claims.claims.get(other_link.claim_id)
            other_photo = self._docs[other_id].photo
            if other_claim is None or other_photo is None:
                continue
            found.append(reused_across_claims(doc.photo, claim, other_photo, other_claim, distance, self.config))
        return found

    def _alert(self, claim: ClaimFacts, finding: Finding, now_ms: int) -> dict[str, Any]:
        facts = finding.facts if finding.rule == PHOTO_REUSED else {**finding.facts, **claim.loss_facts()}
        return {
            "alert_id": alert_id(SOURCE, finding.rule, claim.claim_id, facts),
            "claim_id": claim.claim_id, "claim_number": claim.claim_number, "rule": finding.rule,
            "severity": finding.severity, "source": SOURCE, "summary": finding.summary,
            "evidence_json": canonical_json(finding.evidence), "vehicle_id": claim.vehicle_id, "device_id": None,
            "loss_time": claim.loss_time_ms, "loss_lat": claim.loss_lat, "loss_lon": claim.loss_lon,
            "claim_change_ts": claim.change_ts_ms, "detected_at": now_ms,
        }

    def _link_record(self, doc: _Document, link: Link | None) -> dict[str, Any]:
        claim = self.claims.claims.get(link.claim_id) if link else None
        return {"document_id": doc.document_id, "claim_id": link.claim_id if link else None,
                "claim_number": link.claim_number if link else None, "method": link.method if link else UNLINKED,
                "mime_type": doc.mime_type, "source_key": doc.source_key, "sha256": doc.sha256,
                "claim_change_ts": claim.change_ts_ms if claim else None}
