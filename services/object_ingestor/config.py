"""Thresholds of object_ingestor's document rules, with where each value comes from.

Overridable with `CLAIMS_INGESTOR_RULE_OVERRIDES` (a JSON object of field -> value); unknown names are an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class DocumentRulesConfig:
    """Knobs of linking and of the photo rules (times in seconds, distances in km)."""

    # Near-duplicate photos: Hamming distance between 64-bit DCT pHashes. Usual practice: N. Krawetz, "Looks Like
    # It" (hackerfactor.com, 2011, the post imagehash and pHash users follow) reads 0 as the same picture, up to ~5
    # as probably the same with small changes and 10 or more as probably a different picture; guides on 64-bit
    # pHash put the cut at 5-10 and tell you to tune it on your data. 8 keeps a margin below 10. Measured here
    # (README "object_ingestor"): JPEG re-compression at q60 and resizing change <= 2 bits, a 2 % crop <= 6,
    # +10 % brightness <= 4; real, different photos sit around 32.
    phash_max_distance: int = 8
    # A photo is "before the loss" only beyond this margin: reported loss times are approximate (the telematics
    # rules allow +-30 min) and a camera clock left on the other side of a DST change is off by 1 h.
    before_loss_tolerance_s: float = 2 * 3600.0
    # EXIF DateTimeOriginal is camera-local time without a zone (unless OffsetTimeOriginal is set). Without the
    # claim's loss_local_time to compare with, the photo's UTC time is only known to within the range of UTC
    # offsets in use (UTC-12 to UTC+14): we allow 14 h either way.
    zone_slack_s: float = 14 * 3600.0
    # A photo's GPS position this far from the reported loss place is flagged. Photos are often taken later at
    # home or at the repair shop after a tow, so the radius is much larger than the telematics rule's 3 km.
    far_km: float = 25.0
    # Linking by policy number + loss date: a loss date written on a form is local; against a claim without
    # loss_local_time (UTC loss_time only) the calendar date may differ by one day.
    loss_date_slack_days: int = 1


def document_rules_config(overrides: Mapping[str, Any] | None = None) -> DocumentRulesConfig:
    """DocumentRulesConfig with `overrides` (settings.ingestor_rule_overrides) applied; unknown names are an error."""
    known = {f.name for f in fields(DocumentRulesConfig)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ValueError(f"unknown object_ingestor rule setting(s) {unknown}; valid names: {sorted(known)}")
    return DocumentRulesConfig(**(overrides or {}))
