-- The mock internet hospital's database: reference data, patient-written tables and the seed.
-- Idempotent: running it again on a seeded database changes nothing.
-- Every patient-written table carries the client's write_id (unique), so a retried write is stored
-- once and the RPO count can ask "is this acknowledged write still here?".

CREATE TABLE IF NOT EXISTS departments (
    id          integer PRIMARY KEY,
    name        text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS doctors (
    id            integer PRIMARY KEY,
    name          text NOT NULL,
    department_id integer NOT NULL REFERENCES departments (id),
    title         text NOT NULL
);

CREATE TABLE IF NOT EXISTS patients (
    patient_id  text PRIMARY KEY,
    name        text NOT NULL,
    gender      text NOT NULL CHECK (gender IN ('M', 'F')),
    birth_year  integer NOT NULL,
    insured     boolean NOT NULL DEFAULT true,
    test_account boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS appointments (
    id          bigserial PRIMARY KEY,
    write_id    text UNIQUE NOT NULL,
    patient_id  text NOT NULL REFERENCES patients (patient_id),
    doctor_id   integer NOT NULL REFERENCES doctors (id),
    kind        text NOT NULL DEFAULT 'followup',
    status      text NOT NULL DEFAULT 'booked',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS consultations (
    id          bigserial PRIMARY KEY,
    write_id    text UNIQUE NOT NULL,
    patient_id  text NOT NULL REFERENCES patients (patient_id),
    doctor_id   integer NOT NULL REFERENCES doctors (id),
    symptoms    text NOT NULL,
    status      text NOT NULL DEFAULT 'waiting',
    reply       text,
    replied_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS prescriptions (
    id              bigserial PRIMARY KEY,
    write_id        text UNIQUE NOT NULL,
    patient_id      text NOT NULL REFERENCES patients (patient_id),
    consultation_id bigint NOT NULL REFERENCES consultations (id),
    drug            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS exam_bookings (
    id          bigserial PRIMARY KEY,
    write_id    text UNIQUE NOT NULL,
    patient_id  text NOT NULL REFERENCES patients (patient_id),
    exam        text NOT NULL,
    slot        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS payments (
    id                bigserial PRIMARY KEY,
    write_id          text UNIQUE NOT NULL,
    patient_id        text NOT NULL REFERENCES patients (patient_id),
    amount            numeric(12, 2) NOT NULL CHECK (amount >= 0),
    insurance         boolean NOT NULL,
    insurance_covered numeric(12, 2) NOT NULL DEFAULT 0,
    paid              numeric(12, 2) NOT NULL,
    claim_id          text,
    payment_id        text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Seed: 12 departments, 60 doctors (5 per department), patients P00001..P10000 (the registered
-- population the load draws from: harness/load/population.py), test account T00001.

INSERT INTO departments (id, name) VALUES
    (1, '全科医学科'), (2, '内科'), (3, '外科'), (4, '儿科'), (5, '妇产科'), (6, '皮肤科'),
    (7, '眼科'), (8, '耳鼻喉科'), (9, '口腔科'), (10, '中医科'), (11, '心血管内科'), (12, '内分泌科')
ON CONFLICT DO NOTHING;

INSERT INTO doctors (id, name, department_id, title)
SELECT i,
       (ARRAY['王','李','张','刘','陈','杨','赵','黄','周','吴','徐','孙','胡','朱','高'])[1 + (i * 7) % 15]
       || (ARRAY['建国','秀英','志强','丽华','海燕','文杰','明辉','静怡','国平','晓东','红梅','立新'])[1 + (i * 5) % 12],
       1 + (i - 1) % 12,
       (ARRAY['主任医师','副主任医师','主治医师','住院医师'])[1 + (i - 1) / 12 % 4]
FROM generate_series(1, 60) AS i
ON CONFLICT DO NOTHING;

-- back-entry (补录) of what offline reception took while the site was down: one row per offline
-- record, keyed on the id the patient's phone made, so entering the same record twice is refused
CREATE TABLE IF NOT EXISTS offline_entries (
    id          BIGSERIAL PRIMARY KEY,
    offline_id  TEXT NOT NULL UNIQUE,
    patient_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('registration', 'refill', 'payment_promise')),
    detail      JSONB NOT NULL,
    taken_at    TIMESTAMPTZ NOT NULL,
    entered_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- conflict: entered, but held for clinical review (e.g. a slot another patient took meanwhile)
    status      TEXT NOT NULL DEFAULT 'entered' CHECK (status IN ('entered', 'conflict')),
    conflict    TEXT
);

INSERT INTO patients (patient_id, name, gender, birth_year, insured)
SELECT 'P' || lpad(i::text, 5, '0'),
       (ARRAY['王','李','张','刘','陈','杨','赵','黄','周','吴','徐','孙','胡','朱','高','林','何','郭','马','罗'])[1 + i % 20]
       || (ARRAY['伟','芳','娜','敏','静','丽','强','磊','军','洋','勇','艳','杰','娟','涛','明','超','霞','平','刚'])[1 + (i / 20) % 20]
       || CASE WHEN i % 3 = 0 THEN (ARRAY['华','英','玉','兰','文','斌'])[1 + i % 6] ELSE '' END,
       CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END,
       1940 + (i * 37) % 66,
       i % 10 <> 0  -- one patient in ten pays without medical insurance
FROM generate_series(1, 10000) AS i
ON CONFLICT DO NOTHING;

INSERT INTO patients (patient_id, name, gender, birth_year, insured, test_account)
VALUES ('T00001', '测试账号', 'M', 1990, true, true)
ON CONFLICT DO NOTHING;
