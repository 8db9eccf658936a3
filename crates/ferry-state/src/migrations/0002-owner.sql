-- ferry state, schema 2: whose database this is.
--
-- Append-only: never edit this file once released; add the next step.

-- The account the database belongs to, as the run that first used it (or
-- first used it with schema 2) named it: the server's user and host
-- ("user@host"). A run for another identity refuses the database, whose
-- pairs would otherwise name messages that are not there and be taken for
-- deletions (a database copied from another account, or two accounts'
-- names swapped in the config).
CREATE TABLE owner (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    identity  TEXT NOT NULL
);
