-- claims_db: the motor-claims operational database, the CDC source of the platform.
-- Applied as the application owner role inside claims_db (see bootstrap.sql for roles and the publication).
--
-- Replica identity, chosen per table:
--   FULL    on claims, claim_payments, policies: money and claim status are audited, so every update and
--           delete must carry the complete before image (Debezium `before`); rows are small, so the extra WAL
--           is cheap.
--   DEFAULT (primary key) everywhere else: the lake keys by primary key, so the key in a delete is enough,
--           and we avoid logging whole old rows for high-churn reference data.
-- The column types deliberately cover what CDC must decode: numeric, timestamptz, timestamp, date, time,
-- jsonb, uuid, arrays, enums, booleans, floating point, smallint/bigint.

CREATE TYPE claim_status AS ENUM ('draft', 'fnol', 'assessing', 'approved', 'denied', 'paid', 'closed');

CREATE TABLE customers (
    customer_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    full_name       text NOT NULL,                 -- PII
    date_of_birth   date NOT NULL,                 -- PII
    email           text,                          -- PII
    phone           text,                          -- PII
    national_id     text NOT NULL UNIQUE,          -- PII
    address         jsonb NOT NULL DEFAULT '{}'::jsonb,
    marketing_opt_in boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policies (
    policy_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_number   text NOT NULL UNIQUE,          -- e.g. POL-2026-0001234
    customer_id     uuid NOT NULL REFERENCES customers (customer_id),
    product         text NOT NULL CHECK (product IN ('motor_comprehensive', 'motor_tpft', 'motor_third_party')),
    inception_date  date NOT NULL,
    expiry_date     date NOT NULL,
    sum_insured     numeric(14, 2) NOT NULL CHECK (sum_insured >= 0),
    annual_premium  numeric(12, 2) NOT NULL CHECK (annual_premium >= 0),
    excess_amount   numeric(10, 2) NOT NULL DEFAULT 0,
    currency        char(3) NOT NULL DEFAULT 'EUR',
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'lapsed', 'cancelled')),
    cover_options   text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (expiry_date > inception_date)
);
ALTER TABLE policies REPLICA IDENTITY FULL;

CREATE TABLE vehicles (
    vehicle_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id       uuid NOT NULL REFERENCES policies (policy_id),
    vin             char(17) NOT NULL UNIQUE,
    make            text NOT NULL,
    model           text NOT NULL,
    model_year      smallint NOT NULL CHECK (model_year BETWEEN 1950 AND 2100),
    registration    text NOT NULL,
    market_value    numeric(12, 2),
    telematics_device_id text UNIQUE,             -- NULL when the vehicle has no black box
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE drivers (
    driver_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_id       uuid NOT NULL REFERENCES policies (policy_id),
    customer_id     uuid REFERENCES customers (customer_id),  -- set when the driver is the policyholder
    full_name       text NOT NULL,                 -- PII
    date_of_birth   date NOT NULL,                 -- PII
    licence_number  text NOT NULL,                 -- PII
    licence_issued  date NOT NULL,
    is_main_driver  boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE adjusters (
    adjuster_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name       text NOT NULL,
    email           text NOT NULL UNIQUE,
    region          text NOT NULL,
    skills          text[] NOT NULL DEFAULT '{}',
    max_open_claims integer NOT NULL DEFAULT 40,
    shift_start     time NOT NULL DEFAULT '08:00',
    active          boolean NOT NULL DEFAULT true
);

CREATE TABLE claims (
    claim_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    claim_number    text NOT NULL UNIQUE,          -- e.g. CLM-2026-0004567
    policy_id       uuid NOT NULL REFERENCES policies (policy_id),
    vehicle_id      uuid REFERENCES vehicles (vehicle_id),
    driver_id       uuid REFERENCES drivers (driver_id),
    status          claim_status NOT NULL DEFAULT 'draft',
    loss_time       timestamptz NOT NULL,          -- when the loss happened (as reported)
    loss_local_time timestamp,                     -- wall-clock time written on the form, no zone
    loss_lat        double precision CHECK (loss_lat BETWEEN -90 AND 90),
    loss_lon        double precision CHECK (loss_lon BETWEEN -180 AND 180),
    loss_type       text NOT NULL CHECK (loss_type IN ('collision', 'theft', 'vandalism', 'glass', 'fire', 'weather')),
    description     text,
    reported_at     timestamptz NOT NULL DEFAULT now(),
    claimed_amount  numeric(12, 2) NOT NULL DEFAULT 0 CHECK (claimed_amount >= 0),
    reserve_amount  numeric(12, 2) NOT NULL DEFAULT 0,
    settled_amount  numeric(12, 2),
    sla_due_at      timestamptz NOT NULL,
    third_party_involved boolean NOT NULL DEFAULT false,
    injury_count    smallint NOT NULL DEFAULT 0,
    tags            text[] NOT NULL DEFAULT '{}',
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    row_version     bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE claims REPLICA IDENTITY FULL;
CREATE INDEX claims_policy_idx ON claims (policy_id);
CREATE INDEX claims_status_idx ON claims (status) WHERE status NOT IN ('closed', 'denied');

CREATE TABLE claim_payments (
    payment_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    claim_id        uuid NOT NULL REFERENCES claims (claim_id),
    amount          numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL DEFAULT 'EUR',
    payee           text NOT NULL CHECK (payee IN ('policyholder', 'repairer', 'third_party', 'medical')),
    method          text NOT NULL CHECK (method IN ('bank_transfer', 'cheque', 'direct_repair')),
    reference       text NOT NULL UNIQUE,
    paid_at         timestamptz NOT NULL DEFAULT now(),
    value_date      date NOT NULL
);
ALTER TABLE claim_payments REPLICA IDENTITY FULL;
CREATE INDEX claim_payments_claim_idx ON claim_payments (claim_id);

CREATE TABLE adjuster_assignments (
    assignment_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    claim_id        uuid NOT NULL REFERENCES claims (claim_id) ON DELETE CASCADE,
    adjuster_id     integer NOT NULL REFERENCES adjusters (adjuster_id),
    role            text NOT NULL DEFAULT 'lead' CHECK (role IN ('lead', 'field', 'desk')),
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    unassigned_at   timestamptz
);
CREATE INDEX adjuster_assignments_claim_idx ON adjuster_assignments (claim_id);

-- Keep updated_at / row_version honest no matter which client writes.
CREATE FUNCTION touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF TG_TABLE_NAME = 'claims' THEN
        NEW.row_version := OLD.row_version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER policies_touch BEFORE UPDATE ON policies FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER claims_touch BEFORE UPDATE ON claims FOR EACH ROW EXECUTE FUNCTION touch_row();
