-- Open claims against their due time (claims.sla_due_at), with the adjuster currently responsible
-- (gold.claim_lead_adjuster; 'unassigned' when none). Open: not yet paid, closed or denied.
-- hours_to_due is negative once overdue; sla_state buckets it (overdue, due_within_24h, on_track).
CREATE OR REPLACE VIEW gold.claims_sla AS
SELECT
    c.claim_id,
    c.claim_number,
    c.status,
    c.loss_type,
    c.reported_at,
    c.sla_due_at,
    coalesce(la.adjuster_name, 'unassigned') AS adjuster,
    la.adjuster_id,
    la.adjuster_region,
    CAST(date_diff('minute', current_timestamp, c.sla_due_at) AS double) / 60 AS hours_to_due,
    date_diff('day', c.reported_at, current_timestamp) AS age_days,
    c.sla_due_at < current_timestamp AS is_overdue,
    CASE
        WHEN c.sla_due_at < current_timestamp THEN 'overdue'
        WHEN c.sla_due_at < current_timestamp + INTERVAL '1' DAY THEN 'due_within_24h'
        ELSE 'on_track'
    END AS sla_state,
    c.claimed_amount,
    c.reserve_amount
FROM live.claims AS c
LEFT JOIN gold.claim_lead_adjuster AS la ON la.claim_id = c.claim_id
WHERE c.status NOT IN ('paid', 'closed', 'denied')
