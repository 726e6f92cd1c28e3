-- Issue 38: an agent acknowledged an alarm without a word ("seen, patrol sent", "known works on the
-- site"). What they say is kept with the acknowledgement and journaled with it.
ALTER TABLE alarms ADD COLUMN ack_comment text CHECK (length(ack_comment) <= 200);
