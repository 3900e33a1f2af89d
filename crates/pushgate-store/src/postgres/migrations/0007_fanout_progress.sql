-- When a chunk of a large fan-out was last stored (ms; NULL: none since the message was
-- accepted). Channels store the chunks they send as they claim; the fan-out task stores one
-- only for a message none of whose chunks was stored for a while.
ALTER TABLE messages ADD COLUMN expanded_at BIGINT;
-- Every claim looks for the oldest message of its app still expanding: this index holds only
-- those, so the look never reads the app's history.
CREATE INDEX messages_expanding_app ON messages (app, created_at) WHERE expansion IS NOT NULL;
