-- Every red flag on a live claim, one row per (claim, rule): the alerts raised by the services
-- (live.fraud_alerts: telematics_scorer, object_ingestor) plus rules evaluated here over the lake:
--   loss_soon_after_inception   loss within 30 days of policy inception (high within 7)
--   loss_outside_cover          loss before inception or after expiry of the policy
--   late_report                 reported more than 30 days after the loss
--   claimed_over_market_value   claimed amount above the vehicle's market value
--   document_vin_mismatch       a document of the claim shows a valid VIN that is not the claim vehicle's
CREATE OR REPLACE VIEW gold.fraud AS
WITH claim AS (
    SELECT
        c.claim_id,
        c.claim_number,
        c.status,
        c.loss_time,
        c.reported_at,
        c.claimed_amount,
        p.policy_number,
        p.inception_date,
        p.expiry_date,
        v.vin,
        v.market_value,
        date_diff('day', p.inception_date, CAST(c.loss_time AS date)) AS days_after_inception
    FROM live.claims AS c
    LEFT JOIN live.policies AS p ON p.policy_id = c.policy_id
    LEFT JOIN live.vehicles AS v ON v.vehicle_id = c.vehicle_id
),
flags AS (
    SELECT
        claim_id,
        alert_id AS flag_id,
        rule,
        severity,
        source,
        summary,
        evidence_json,
        detected_at
    FROM live.fraud_alerts
    UNION ALL
    SELECT
        claim_id,
        'loss_soon_after_inception:' || claim_id,
        'loss_soon_after_inception',
        CASE WHEN days_after_inception <= 7 THEN 'high' ELSE 'medium' END,
        'lake_rules',
        'Loss ' || CAST(days_after_inception AS varchar) || ' days after policy inception',
        '{"days_after_inception":' || CAST(days_after_inception AS varchar) || '}',
        CAST(NULL AS timestamp(3) with time zone)
    FROM claim
    WHERE days_after_inception BETWEEN 0 AND 30
    UNION ALL
    SELECT
        claim_id,
        'loss_outside_cover:' || claim_id,
        'loss_outside_cover',
        'high',
        'lake_rules',
        'Loss on ' || CAST(CAST(loss_time AS date) AS varchar) || ' outside cover ' || CAST(inception_date AS varchar)
            || ' to ' || CAST(expiry_date AS varchar),
        '{"days_after_inception":' || CAST(days_after_inception AS varchar) || '}',
        CAST(NULL AS timestamp(3) with time zone)
    FROM claim
    WHERE CAST(loss_time AS date) < inception_date OR CAST(loss_time AS date) > expiry_date
    UNION ALL
    SELECT
        claim_id,
        'late_report:' || claim_id,
        'late_report',
        'low',
        'lake_rules',
        'Reported ' || CAST(date_diff('day', loss_time, reported_at) AS varchar) || ' days after the loss',
        '{"days_to_report":' || CAST(date_diff('day', loss_time, reported_at) AS varchar) || '}',
        CAST(NULL AS timestamp(3) with time zone)
    FROM claim
    WHERE date_diff('day', loss_time, reported_at) > 30
    UNION ALL
    SELECT
        claim_id,
        'claimed_over_market_value:' || claim_id,
        'claimed_over_market_value',
        'medium',
        'lake_rules',
        'Claimed ' || CAST(claimed_amount AS varchar) || ' for a vehicle worth ' || CAST(market_value AS varchar),
        '{"claimed_amount":' || CAST(claimed_amount AS varchar) || ',"market_value":' || CAST(market_value AS varchar) || '}',
        CAST(NULL AS timestamp(3) with time zone)
    FROM claim
    WHERE claimed_amount > market_value
    UNION ALL
    SELECT
        claim.claim_id,
        'document_vin_mismatch:' || d.document_id,
        'document_vin_mismatch',
        'high',
        'lake_rules',
        'Document ' || coalesce(d.name, d.document_id) || ' shows VIN ' || d.fields_vin || ', the claim vehicle is ' || claim.vin,
        '{"document_id":"' || d.document_id || '","document_vin":"' || d.fields_vin || '"}',
        CAST(NULL AS timestamp(3) with time zone)
    FROM claim
    JOIN live.documents AS d ON d.fields_claim_number = claim.claim_number
    WHERE d.fields_vin IS NOT NULL AND claim.vin IS NOT NULL AND d.fields_vin <> claim.vin
)
SELECT
    f.flag_id,
    f.claim_id,
    claim.claim_number,
    claim.status AS claim_status,
    claim.policy_number,
    claim.loss_time,
    claim.claimed_amount,
    f.rule,
    f.severity,
    CASE f.severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END AS severity_rank,
    f.source,
    f.summary,
    f.evidence_json,
    f.detected_at
FROM flags AS f
JOIN claim ON claim.claim_id = f.claim_id
