"""Thresholds and knobs of trip scoring, with where the defaults come from.

Every default is a plain-number field so a deployment (or the replay CLI) can override it. Accelerations are in
m/s^2 internally; thresholds are given in g because that is how the sources state them.

Sources for the defaults. Re-checked 2026-11-25 for the two figures we first had second-hand; Progressive's and the
NPCC's own pages could not be retrieved from here, so both are cited through the secondary sources that quote them:
- Progressive Snapshot counts a "hard brake" when speed falls by 7 mph or more in one second (≈ 3.13 m/s^2 ≈ 0.32 g):
  Progressive's definition as quoted by Snapshot participants and reviews (e.g. haohubioinfo.wordpress.com,
  "An analytical review of the Snapshot program by Progressive", 2013; middleclassmodern.com, "Snapshot", 2012;
  farmersinsurancekit.github.io, "Progressive Snapshot hard braking: what counts"), which also report that each
  second at ≥ 7 mph/s counts separately and that normal urban stops trigger it: one reason our braking threshold
  sits above it (0.35 g) and requires a sustained run.
- eDriving Mentor (support.edriving.com, "What are Mentor's harsh braking and harsh cornering thresholds?"):
  harsh braking 0.41 g (9 mph/s), harsh cornering 0.5 g.
- Positrace knowledge base "Harsh behavior detection" (kb.positrace.com/harsh-behavior-detection) and the GNX device
  defaults documented by FleetFreedom: industry-standard passenger-car values acceleration 0.20 g, deceleration 0.25 g,
  harsh turn 0.30 g; a family sedan "rarely exceeds 0.4 g on any axis"; crash detection thresholds "anywhere from
  1 g to 2.5 g"; a minimum event speed of 10-20 km/h and an optional minimum event duration to reject brief spikes.
- Digital Matter G70 harsh-event setup (support.digitalmatter.com, article 16000132686): defaults 4.4 m/s^2
  (0.45 g) for acceleration and braking, 5.5 m/s^2 (0.56 g) for cornering, with a "log duration" to filter brief events.
- UK National Police Chiefs' Council (NPCC, formerly ACPO) speed enforcement guidance: proceedings normally start at
  the posted limit + 10 % + 2 mph (35 mph in a 30 limit), as quoted in enforcement discussions (e.g. pistonheads.com
  "Speeding and Thresholds - Defence outside of NPCC"); it is guidance, not law. This is our speeding tolerance
  (so 5 % over never counts).
- Crash: smartphone and dongle crash detection commonly uses a 2.5-4 g horizontal spike (WreckWatch, White et al.
  2011, used 4 g; Positrace's range tops at 2.5 g) confirmed by the vehicle coming to rest shortly afterwards.

The chosen values sit inside these published ranges: 0.35 g braking, 0.30 g acceleration, 0.40 g cornering, all
sustained for at least 0.5 s and corroborated by the speed or heading change they imply (a pothole or a loose
device produces a spike the vehicle's speed and heading do not follow), speeding at limit +10 % +2 mph for at least
10 s, crash at 2.5 g horizontal followed by a stop (speed ≤ 1 m/s) within 5 s.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

G = 9.80665
KMH = 1 / 3.6
MPH = 0.44704


class InvalidScoringConfig(ValueError):
    """A ScoringConfig field is out of range; the message names the field and the allowed range."""


@dataclass(frozen=True)
class ScoringConfig:
    """Knobs of cleaning, trip segmentation, event detection and scoring (times in seconds)."""

    # -- cleaning ---------------------------------------------------------------------------------------------
    reorder_grace_s: float = 30.0          # a reading up to this far behind the newest one seen is put back in place
    max_valid_speed_mps: float = 100.0     # reported speeds above this (360 km/h) are sensor garbage
    max_valid_accel_mps2: float = 20 * G   # beyond any telematics accelerometer's range (typically ±16 g)
    max_implied_speed_mps: float = 70.0    # GPS jump faster than this (252 km/h) between fixes is a glitch
    gps_tolerance_m: float = 25.0          # GPS noise allowed on top of any implied-distance bound
    speed_check_factor: float = 1.5        # a jump longer than 1.5 × max(reported speed) × dt (+ tolerance) is a glitch
    speed_check_max_dt_s: float = 30.0     # the reported-speed check only applies across short intervals
    glitch_max_burst: int = 5              # more consecutive implausible fixes than this = a real relocation, kept
    max_sample_gap_s: float = 5.0          # a longer interval inside a trip is a gap (counted; breaks event runs)
    stationary_speed_mps: float = 0.5      # both fixes slower than this and closer than
    stationary_jitter_m: float = 20.0      # this: GPS jitter while standing, not distance driven

    # -- trips ------------------------------------------------------------------------------------------------
    trip_gap_s: float = 300.0              # no readings for this long = ignition off, the trip ends
    idle_partition_close_s: float = 600.0  # wall clock: a partition silent this long has its open trips closed
    path_interval_s: float = 15.0          # a trip record keeps one fix per this interval (its thinned trace)

    # -- events -----------------------------------------------------------------------------------------------
    harsh_braking_g: float = 0.35
    harsh_acceleration_g: float = 0.30
    harsh_cornering_g: float = 0.40
    min_event_duration_s: float = 0.5      # a run of samples beyond a threshold must cover at least this long
    corroboration_ratio: float = 0.5       # the speed/heading change over a run must be ≥ this × threshold × duration
    speeding_tolerance_ratio: float = 0.10
    speeding_tolerance_mps: float = 2 * MPH
    speeding_min_duration_s: float = 10.0
    crash_g: float = 2.5                   # resultant horizontal (longitudinal ⊕ lateral) acceleration
    crash_stop_within_s: float = 5.0
    crash_stop_speed_mps: float = 1.0
    crash_signal_loss_counts_as_stop: bool = True  # the device going silent right after the impact counts as a stop

    # -- scoring (see scoring.py for the formula) -------------------------------------------------------------
    weight_harsh_braking: float = 1.0
    weight_harsh_acceleration: float = 0.5
    weight_harsh_cornering: float = 0.75
    weight_speeding_per_min: float = 0.5
    severity_cap: float = 3.0
    min_exposure_km: float = 5.0
    score_scale: float = 50.0              # weighted events per 100 km at which the score is 100/e ≈ 37
    crash_score_cap: float = 20.0
    driver_half_life_km: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not value > 0 and f.name not in ("reorder_grace_s",):
                raise InvalidScoringConfig(f"ScoringConfig.{f.name} must be > 0, got {value!r}")
            if value < 0:
                raise InvalidScoringConfig(f"ScoringConfig.{f.name} must be >= 0, got {value!r}")
        if self.max_sample_gap_s >= self.trip_gap_s:
            raise InvalidScoringConfig("ScoringConfig.max_sample_gap_s must be shorter than trip_gap_s")
        if self.crash_score_cap > 100:
            raise InvalidScoringConfig("ScoringConfig.crash_score_cap must be within 0-100")


def scoring_config(overrides: dict[str, object] | None = None) -> ScoringConfig:
    """ScoringConfig with `overrides` (e.g. settings.scoring_overrides) applied; unknown names are an error."""
    known = {f.name for f in fields(ScoringConfig)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise InvalidScoringConfig(f"unknown scoring setting(s) {unknown}; valid names: {sorted(known)}")
    return ScoringConfig(**(overrides or {}))  # type: ignore[arg-type]
