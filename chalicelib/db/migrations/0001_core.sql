-- Core box office: accounts, screenings, seats, holds and sales.
-- PostgreSQL is the only judge of who holds or owns a seat; the constraints below make a double
-- sale impossible even if application code were wrong.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('CUSTOMER', 'MANAGER')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- A screening. Called "session" because that is what the box office and the API call it.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    movie         text NOT NULL CHECK (length(movie) BETWEEN 1 AND 200),
    room          text NOT NULL CHECK (length(room) BETWEEN 1 AND 100),
    starts_at     timestamptz NOT NULL,
    price_cents   integer NOT NULL CHECK (price_cents >= 0),
    seat_rows     smallint NOT NULL CHECK (seat_rows BETWEEN 1 AND 26),
    seats_per_row smallint NOT NULL CHECK (seats_per_row BETWEEN 1 AND 50),
    total_seats   integer GENERATED ALWAYS AS (seat_rows * seats_per_row) STORED
                  CHECK (total_seats >= 16),
    created_by    uuid REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Keyset paging of upcoming sessions: soonest first, id breaks ties.
CREATE INDEX sessions_upcoming ON sessions (starts_at, id);

-- A hold on one or more seats. PENDING until paid (CONFIRMED), cancelled or expired.
CREATE TABLE reservations (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions (id),
    customer_id  uuid NOT NULL REFERENCES users (id),
    status       text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'EXPIRED')),
    seats        text[] NOT NULL CHECK (cardinality(seats) BETWEEN 1 AND 10),
    amount_cents integer NOT NULL CHECK (amount_cents >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    CHECK ((status = 'PENDING') = (closed_at IS NULL))
);
CREATE INDEX reservations_pending_by_expiry ON reservations (expires_at) WHERE status = 'PENDING';
CREATE INDEX reservations_by_customer ON reservations (customer_id);

CREATE TABLE sales (
    id             uuid PRIMARY KEY,
    reservation_id uuid NOT NULL UNIQUE REFERENCES reservations (id),
    session_id     uuid NOT NULL REFERENCES sessions (id),
    customer_id    uuid NOT NULL REFERENCES users (id),
    amount_cents   integer NOT NULL CHECK (amount_cents >= 0),
    paid_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sales_by_customer ON sales (customer_id, paid_at DESC);

-- One row per seat. Its current holder lives on the row itself, so a seat can be in at most one
-- hold at a time by construction, and it has exactly one place to record its sale.
CREATE TABLE seats (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id),
    label      text NOT NULL,
    seat_row   text NOT NULL,
    number     smallint NOT NULL,
    hold_id    uuid REFERENCES reservations (id),
    held_until timestamptz,
    sale_id    uuid REFERENCES sales (id),
    UNIQUE (session_id, label),
    CHECK ((hold_id IS NULL) = (held_until IS NULL)),
    CHECK (sale_id IS NULL OR hold_id IS NULL)
);
CREATE INDEX seats_by_hold ON seats (hold_id) WHERE hold_id IS NOT NULL;

-- Which seats each hold asked for, kept after the hold ends (history and audit).
CREATE TABLE reservation_seats (
    reservation_id uuid NOT NULL REFERENCES reservations (id),
    seat_id        bigint NOT NULL REFERENCES seats (id),
    PRIMARY KEY (reservation_id, seat_id)
);

-- Last line of defence: a sold seat stays sold to the same sale, and a live hold cannot be
-- overwritten by another one. now() is the transaction's clock, the same one the hold SQL uses.
CREATE FUNCTION seats_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.sale_id IS NOT NULL AND NEW.sale_id IS DISTINCT FROM OLD.sale_id THEN
        RAISE EXCEPTION 'seat % of session % is already sold', OLD.label, OLD.session_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.hold_id IS NOT NULL AND NEW.hold_id IS NOT NULL AND NEW.hold_id <> OLD.hold_id
       AND OLD.held_until > now() THEN
        RAISE EXCEPTION 'seat % of session % is in a live hold', OLD.label, OLD.session_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER seats_guard BEFORE UPDATE ON seats
    FOR EACH ROW WHEN (OLD.sale_id IS NOT NULL OR OLD.hold_id IS NOT NULL)
    EXECUTE FUNCTION seats_guard();
