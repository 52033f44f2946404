-- Parlor's history on PostgreSQL, version 1 (see docs/postgresql.md).
-- Every row of a person's data carries their owner_key (a hash of their id, as TinyDB's
-- folder name): every query names it, so another person's rows are never reached.

CREATE TABLE owners (
    owner_key text PRIMARY KEY,
    settings jsonb                                  -- NULL: none stored
);

-- An owner id used up at sign-in: a cookie still naming it gets a fresh identity.
CREATE TABLE retired_owners (
    owner_key text PRIMARY KEY
);

CREATE TABLE conversations (
    owner_key text NOT NULL REFERENCES owners ON DELETE CASCADE,
    id text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,        -- creation order, breaks ties
    title text NOT NULL,
    model text NOT NULL,
    created_at text NOT NULL,                       -- ISO 8601, as the TinyDB rows
    updated_ns bigint NOT NULL,                     -- the listing's order
    leaf_id text,                                   -- the message shown last
    extra jsonb NOT NULL DEFAULT '{}',              -- system_prompt, consent, title_set_by…
    title_words tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED,
    PRIMARY KEY (owner_key, id)
);
CREATE INDEX conversations_newest ON conversations (owner_key, updated_ns DESC, seq DESC);

-- A conversation is a tree: each message names its parent (NULL: a root).
CREATE TABLE messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order = sibling order
    owner_key text NOT NULL,
    conversation_id text NOT NULL,
    id text NOT NULL,
    parent_id text,
    role text NOT NULL,
    content text NOT NULL,
    extra jsonb NOT NULL DEFAULT '{}',              -- created_at, model, reasoning, feedback…
    words tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    FOREIGN KEY (owner_key, conversation_id) REFERENCES conversations (owner_key, id)
        ON DELETE CASCADE ON UPDATE CASCADE          -- a sign-in moves them with it
);
CREATE INDEX messages_of ON messages (owner_key, conversation_id, seq);
-- Search: one owner's messages holding a word, in one index (btree_gin lets a GIN index
-- hold the owner_key beside the words; a trusted extension, so the database's owner may
-- create it).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX messages_words ON messages USING gin (owner_key, words);

-- Share links: a snapshot names no one; the owner's list is the one ownership record.
CREATE TABLE share_snapshots (
    id text PRIMARY KEY,
    snapshot jsonb NOT NULL,                        -- title, model, created_at
    messages jsonb NOT NULL
);
CREATE TABLE share_links (
    owner_key text NOT NULL REFERENCES owners ON DELETE CASCADE,
    id text NOT NULL,
    conversation_id text NOT NULL,
    title text NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (owner_key, id)
);
