-- When a chunk of a large fan-out was last stored (ms; NULL: none since the message was
-- accepted). Channels store the chunks they send as they claim; the fan-out task stores one
-- only for a message none of whose chunks was stored for a while.
ALTER TABLE messages ADD COLUMN expanded_at INTEGER;
