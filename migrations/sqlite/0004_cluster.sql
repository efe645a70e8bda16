-- Same tables as PostgreSQL; the embedded engine runs alone, so these stay mostly unused.
ALTER TABLE instances ADD COLUMN shared_limits BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE inbox ADD COLUMN reply BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE replies (
    inbox_id   INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
