-- The relay claims time-critical expiry rows before events: find unsent rows per destination.
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (destination, id) WHERE published_at IS NULL;
