-- Telematics around each claim's loss: the claim vehicle's trips that overlap, and its harsh events and crashes
-- that start within, loss_time +/- 1 hour. The vehicle is matched by vehicles.telematics_device_id, which is the
-- vehicle_id of the telematics tables. One row per (claim, trip) and per (claim, event).
CREATE OR REPLACE VIEW gold.claim_telematics AS
WITH loss AS (
    SELECT
        c.claim_id,
        c.claim_number,
        c.loss_time,
        v.telematics_device_id AS device_id
    FROM live.claims AS c
    JOIN live.vehicles AS v ON v.vehicle_id = c.vehicle_id
    WHERE v.telematics_device_id IS NOT NULL
)
SELECT
    l.claim_id,
    l.claim_number,
    l.device_id,
    l.loss_time,
    'trip' AS kind,
    t.trip_id AS item_id,
    t.trip_id,
    CAST(NULL AS varchar) AS event_type,
    t.start_ts,
    t.end_ts,
    CAST(date_diff('second', l.loss_time, t.start_ts) AS double) / 60 AS minutes_from_loss,
    t.distance_km,
    t.max_speed_kmh,
    t.score AS trip_score,
    CAST(NULL AS double) AS peak_g,
    t.end_lat AS lat,
    t.end_lon AS lon
FROM loss AS l
JOIN live.telematics_trips AS t
    ON t.vehicle_id = l.device_id
    AND t.start_ts <= l.loss_time + INTERVAL '1' HOUR
    AND t.end_ts >= l.loss_time - INTERVAL '1' HOUR
UNION ALL
SELECT
    l.claim_id,
    l.claim_number,
    l.device_id,
    l.loss_time,
    'event' AS kind,
    e.event_id AS item_id,
    e.trip_id,
    e.type AS event_type,
    e.start_ts,
    e.end_ts,
    CAST(date_diff('second', l.loss_time, e.start_ts) AS double) / 60 AS minutes_from_loss,
    CAST(NULL AS double) AS distance_km,
    CAST(NULL AS double) AS max_speed_kmh,
    CAST(NULL AS double) AS trip_score,
    e.peak_g,
    e.lat,
    e.lon
FROM loss AS l
JOIN live.telematics_events AS e
    ON e.vehicle_id = l.device_id
    AND e.start_ts BETWEEN l.loss_time - INTERVAL '1' HOUR AND l.loss_time + INTERVAL '1' HOUR
