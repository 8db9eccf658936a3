-- ferry state, schema 3: an index for the pairs awaiting an expunge.
--
-- Append-only: never edit this file once released; add the next step.

-- Every run counts each folder's pairs and those awaiting an expunge
-- (few or none). `pairs_folder` answers the first from the index alone;
-- this partial index answers the second without reading every pair row
-- (about 4 ms of a 30 ms no-op sync at 20,000 messages).
CREATE INDEX pairs_awaiting_expunge ON pairs (folder) WHERE awaiting_expunge IS NOT NULL;
