-- Token versions, the per-customer seat cap, and parked outbox rows.

-- A bearer token carries its user's token_version; a token with an older one is refused. Changing
-- a user's password or role bumps it, whatever makes the change (the admin command or plain SQL),
-- so a reset password or a demoted manager ends every token issued before.
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;

CREATE FUNCTION users_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash OR NEW.role IS DISTINCT FROM OLD.role
    THEN
        NEW.token_version := OLD.token_version + 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_token_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_token_version();

-- The seat cap counts one customer's holds and purchases in one session, in the hold's own
-- transaction: find them by (customer, session). It serves lookups by customer alone too.
CREATE INDEX reservations_by_customer_session ON reservations (customer_id, session_id);
DROP INDEX reservations_by_customer;

-- A row SNS or SQS refused for good (an invalid parameter, not a throttle or a network error) is
-- parked with the error instead of blocking the rows behind it; it stays for a human to look at.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz, ADD COLUMN last_error text;
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (destination, id)
    WHERE published_at IS NULL AND parked_at IS NULL;
