-- Several instances on one database: which send limiter each instance uses (a second instance
-- needs limits shared through Redis), and answers to API calls applied by another instance.
ALTER TABLE instances ADD COLUMN shared_limits BOOLEAN NOT NULL DEFAULT FALSE;

-- An input whose caller waits on another instance: the owner writes its answer to `replies`
-- in the transaction that applies it.
ALTER TABLE inbox ADD COLUMN reply BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE replies (
    inbox_id   BIGINT PRIMARY KEY,
    body       JSONB NOT NULL,
    created_at BIGINT NOT NULL
);
