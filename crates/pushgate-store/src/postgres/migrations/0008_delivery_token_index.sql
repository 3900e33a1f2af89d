-- (app, token) was paid by every version of every delivery row: an insert, its claim and its
-- answer each write a new row version, and as the claim index's columns change none of them
-- is a heap-only update, so each added a long text key to this index too. It served two rare
-- reads: the raw-token check of one message (now a pass over that message's deliveries,
-- found by deliveries_message) and linking a CCS receipt to its delivery, which this smaller
-- index serves, holding only the versions a provider answered with an id.
DROP INDEX deliveries_app_token;
CREATE INDEX deliveries_provider_id ON deliveries (provider_message_id)
    WHERE provider_message_id IS NOT NULL;
