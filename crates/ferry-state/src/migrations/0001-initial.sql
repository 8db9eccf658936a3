-- ferry state, schema 1.
--
-- One database per account. Everything is a pair of sides, far and near
-- (`ferry sync`: far = IMAP, near = Maildir; `ferry migrate`: both IMAP), so
-- each per-side column exists twice, named far_* and near_*. Columns a kind
-- of store has no use for stay NULL (a Maildir has no UIDVALIDITY, an IMAP
-- folder no directory time stamps).
--
-- Append-only: never edit this file once released; add the next step.

-- Folder pairs. Names: the server's wire name (far), the path relative to
-- the Maildir root (near). validity: the UIDVALIDITY every stored UID of
-- the side belongs to (it changes only together with those UIDs).
-- uidnext/modseq/mailbox_id: UIDNEXT, HIGHESTMODSEQ and MAILBOXID (RFC
-- 8474) as of the last completed sync of the folder (modseq is written only
-- then: RFC 7162 section 3.1). *_new_time_ns, *_cur_time_ns: the time
-- stamps of new/ and cur/ (the ctimes, which ferry-maildir takes as proof of
-- "unchanged"), in nanoseconds since the epoch, from the stable listing of
-- the last completed sync. last_sync_ms: when that sync completed, in
-- milliseconds since the epoch.
CREATE TABLE folders (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    far_name          TEXT NOT NULL UNIQUE,
    near_name         TEXT NOT NULL UNIQUE,
    far_validity      INTEGER CHECK (far_validity BETWEEN 1 AND 4294967295),
    near_validity     INTEGER CHECK (near_validity BETWEEN 1 AND 4294967295),
    far_uidnext       INTEGER CHECK (far_uidnext BETWEEN 0 AND 4294967295),
    near_uidnext      INTEGER CHECK (near_uidnext BETWEEN 0 AND 4294967295),
    far_modseq        INTEGER CHECK (far_modseq >= 0),
    near_modseq       INTEGER CHECK (near_modseq >= 0),
    far_mailbox_id    TEXT,
    near_mailbox_id   TEXT,
    far_new_time_ns  INTEGER,
    far_cur_time_ns  INTEGER,
    near_new_time_ns INTEGER,
    near_cur_time_ns INTEGER,
    last_sync_ms      INTEGER,
    CHECK ((far_new_time_ns IS NULL) = (far_cur_time_ns IS NULL)),
    CHECK ((near_new_time_ns IS NULL) = (near_cur_time_ns IS NULL))
) STRICT;

-- Message pairs: a message as it was when last synced. Per side its key:
-- a UID (*_uid) or a Maildir unique name (*_key), at most one of the two,
-- NULL while unknown (a UIDVALIDITY change voids every UID of the side);
-- and the store's own object id (RFC 8474 EMAILID) where it has one.
-- flags: the Maildir letters (D F P R S T, ASCII order) of the standard
-- flags last synced; keywords: every other IMAP keyword last synced,
-- space-separated, NULL when none (kept although a Maildir name cannot hold
-- them, so they are never dropped). size: octets with CRLF line endings.
-- internal_date: seconds since the epoch. fingerprint: SHA-256 hex of the
-- message with CRLF line endings. awaiting_expunge: the side where ferry
-- removed the message but could only mark it \Deleted (no UIDPLUS); it is
-- never copied back from there.
CREATE TABLE pairs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    folder           INTEGER NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    far_uid          INTEGER CHECK (far_uid BETWEEN 1 AND 4294967295),
    far_key          TEXT,
    near_uid         INTEGER CHECK (near_uid BETWEEN 1 AND 4294967295),
    near_key         TEXT,
    far_email_id     TEXT,
    near_email_id    TEXT,
    flags            TEXT NOT NULL DEFAULT '' CHECK (flags NOT GLOB '*[^DFPRST]*'),
    keywords         TEXT,
    size             INTEGER CHECK (size >= 0),
    internal_date    INTEGER,
    message_id       TEXT,
    fingerprint      TEXT CHECK (length(fingerprint) = 64),
    awaiting_expunge TEXT CHECK (awaiting_expunge IN ('far', 'near')),
    CHECK (far_uid IS NULL OR far_key IS NULL),
    CHECK (near_uid IS NULL OR near_key IS NULL)
) STRICT;

-- Lookups by folder (loading a folder's pairs, cascading a folder's
-- deletion), and by each key: a key names one pair per folder.
CREATE INDEX pairs_folder ON pairs (folder);
CREATE UNIQUE INDEX pairs_far_uid ON pairs (folder, far_uid) WHERE far_uid IS NOT NULL;
CREATE UNIQUE INDEX pairs_far_key ON pairs (folder, far_key) WHERE far_key IS NOT NULL;
CREATE UNIQUE INDEX pairs_near_uid ON pairs (folder, near_uid) WHERE near_uid IS NOT NULL;
CREATE UNIQUE INDEX pairs_near_key ON pairs (folder, near_key) WHERE near_key IS NOT NULL;
CREATE INDEX pairs_fingerprint ON pairs (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX pairs_message_id ON pairs (message_id) WHERE message_id IS NOT NULL;

-- The intent journal. A batch is recorded in one durable transaction before
-- its side effects; each intent is then completed (state 'done') in the
-- same transaction as the pair change it produces, or abandoned.
-- side: where the side effect happens. folder: where it happens (a move's
-- source). payload: the kind's own fields, JSON.
CREATE TABLE batches (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch       INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL
                CHECK (kind IN ('append', 'deliver', 'move', 'remove', 'set_flags')),
    side        TEXT NOT NULL CHECK (side IN ('far', 'near')),
    folder      INTEGER NOT NULL REFERENCES folders (id),
    to_folder   INTEGER REFERENCES folders (id),
    pair        INTEGER REFERENCES pairs (id) ON DELETE SET NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'done', 'abandoned')),
    finished_ms INTEGER,
    CHECK ((kind = 'move') = (to_folder IS NOT NULL))
) STRICT;

CREATE INDEX intents_state ON intents (state, folder);
CREATE INDEX intents_batch ON intents (batch);
CREATE INDEX intents_folder ON intents (folder);
CREATE INDEX intents_to_folder ON intents (to_folder);
CREATE INDEX intents_pair ON intents (pair);
