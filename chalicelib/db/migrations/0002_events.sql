-- Transactional outbox and what the event subscribers record.

-- Written in the same transaction as the state change it describes; a relay sends it after
-- commit. destination 'events' goes to the SNS topic, 'expiry' to the SQS expiry delay queue.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    destination  text NOT NULL CHECK (destination IN ('events', 'expiry')),
    event_type   text NOT NULL,
    aggregate_id uuid NOT NULL,
    body         jsonb NOT NULL,
    deliver_at   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Idempotent consumers: an event id is recorded once per consumer, in the same transaction as
-- the effect, so a redelivered message changes nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- The notifications subscriber's purchase receipts.
CREATE TABLE receipts (
    id             uuid PRIMARY KEY,
    sale_id        uuid NOT NULL UNIQUE,
    reservation_id uuid NOT NULL,
    customer_id    uuid NOT NULL,
    amount_cents   integer NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipts_by_customer ON receipts (customer_id, sent_at DESC);

-- The analytics subscriber's per-session counters.
CREATE TABLE session_stats (
    session_id           uuid PRIMARY KEY,
    sold_seats           integer NOT NULL DEFAULT 0,
    revenue_cents        bigint NOT NULL DEFAULT 0,
    expired_reservations integer NOT NULL DEFAULT 0,
    released_seats       integer NOT NULL DEFAULT 0
);
