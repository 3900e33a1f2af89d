-- Large fan-outs are stored in chunks after the message is accepted: `expansion` keeps what
-- the rest of the audience needs (the targets and the default channel, as JSON) and
-- `expand_from` the device id the next chunk starts at; both are NULL once every delivery of
-- the message is stored. The partial index finds the messages still expanding, oldest first.
ALTER TABLE messages ADD COLUMN expansion TEXT;
ALTER TABLE messages ADD COLUMN expand_from TEXT;
CREATE INDEX messages_expanding ON messages (created_at) WHERE expansion IS NOT NULL;
