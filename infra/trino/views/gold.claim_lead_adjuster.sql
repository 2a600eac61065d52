-- The adjuster currently responsible for each claim: the open lead assignment, else the latest open assignment
-- of any role (field or desk). Claims without an open assignment have no row.
CREATE OR REPLACE VIEW gold.claim_lead_adjuster AS
SELECT
    claim_id,
    adjuster_id,
    adjuster_name,
    adjuster_region,
    role,
    assigned_at
FROM (
    SELECT
        aa.claim_id,
        aa.adjuster_id,
        ad.full_name AS adjuster_name,
        ad.region AS adjuster_region,
        aa.role,
        aa.assigned_at,
        row_number() OVER (
            PARTITION BY aa.claim_id
            ORDER BY CASE WHEN aa.role = 'lead' THEN 0 ELSE 1 END, aa.assigned_at DESC, aa.assignment_id DESC
        ) AS pick
    FROM live.adjuster_assignments AS aa
    LEFT JOIN live.adjusters AS ad ON ad.adjuster_id = aa.adjuster_id
    WHERE aa.unassigned_at IS NULL
) AS ranked
WHERE pick = 1
