-- One row per live claim with everything known about it: policy, tokenized customer (PII columns carry tokens,
-- never clear values), vehicle, current adjuster, payments, documents (matched by the claim number read from
-- them), telematics around the loss (gold.claim_telematics) and fraud alerts.
CREATE OR REPLACE VIEW gold.claim_360 AS
WITH docs AS (
    SELECT
        fields_claim_number AS claim_number,
        count(*) AS documents,
        count_if(status = 'quarantined') AS documents_quarantined,
        array_join(array_agg(coalesce(name, document_id) ORDER BY document_id), ', ') AS document_names
    FROM live.documents
    WHERE fields_claim_number IS NOT NULL
    GROUP BY fields_claim_number
),
payments AS (
    SELECT claim_id, count(*) AS payments, sum(amount) AS paid_amount
    FROM live.claim_payments
    GROUP BY claim_id
),
telematics AS (
    SELECT
        claim_id,
        count_if(kind = 'trip') AS trips_near_loss,
        count_if(kind = 'event') AS events_near_loss,
        count_if(event_type = 'crash') AS crashes_near_loss,
        max(peak_g) AS max_peak_g_near_loss,
        sum(distance_km) AS km_driven_near_loss
    FROM gold.claim_telematics
    GROUP BY claim_id
),
alerts AS (
    SELECT
        claim_id,
        count(*) AS fraud_alerts,
        max(CASE severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END) AS severity_rank,
        array_join(array_sort(array_distinct(array_agg(rule))), ', ') AS alert_rules
    FROM live.fraud_alerts
    GROUP BY claim_id
)
SELECT
    c.claim_id,
    c.claim_number,
    c.status,
    c.loss_type,
    c.loss_time,
    c.loss_lat,
    c.loss_lon,
    c.reported_at,
    c.sla_due_at,
    c.claimed_amount,
    c.reserve_amount,
    c.settled_amount,
    c.injury_count,
    c.third_party_involved,
    c.description,
    p.policy_id,
    p.policy_number,
    p.product,
    p.inception_date,
    p.expiry_date,
    p.status AS policy_status,
    p.sum_insured,
    cu.customer_id,
    cu.full_name AS customer_name_token,
    cu.email AS customer_email_token,
    v.vehicle_id,
    v.vin,
    v.make,
    v.model,
    v.model_year,
    v.registration,
    v.market_value,
    v.telematics_device_id,
    la.adjuster_id,
    la.adjuster_name,
    coalesce(pay.payments, 0) AS payments,
    coalesce(pay.paid_amount, 0) AS paid_amount,
    coalesce(d.documents, 0) AS documents,
    coalesce(d.documents_quarantined, 0) AS documents_quarantined,
    d.document_names,
    ds.score AS driver_score,
    coalesce(t.trips_near_loss, 0) AS trips_near_loss,
    coalesce(t.events_near_loss, 0) AS events_near_loss,
    coalesce(t.crashes_near_loss, 0) AS crashes_near_loss,
    t.max_peak_g_near_loss,
    t.km_driven_near_loss,
    coalesce(al.fraud_alerts, 0) AS fraud_alerts,
    CASE al.severity_rank WHEN 3 THEN 'high' WHEN 2 THEN 'medium' WHEN 1 THEN 'low' END AS max_alert_severity,
    al.alert_rules,
    c.updated_at,
    c._changed_at
FROM live.claims AS c
LEFT JOIN live.policies AS p ON p.policy_id = c.policy_id
LEFT JOIN live.customers AS cu ON cu.customer_id = p.customer_id
LEFT JOIN live.vehicles AS v ON v.vehicle_id = c.vehicle_id
LEFT JOIN gold.claim_lead_adjuster AS la ON la.claim_id = c.claim_id
LEFT JOIN payments AS pay ON pay.claim_id = c.claim_id
LEFT JOIN docs AS d ON d.claim_number = c.claim_number
LEFT JOIN live.driver_scores AS ds ON ds.vehicle_id = v.telematics_device_id
LEFT JOIN telematics AS t ON t.claim_id = c.claim_id
LEFT JOIN alerts AS al ON al.claim_id = c.claim_id
