-- ncc-gateway: sessions of signed-in users (schema auth; docs/gateway.md, Sessions).
-- The cookie value is never stored: id_hash is the SHA-256 (lower-case hex) of it, so
-- a copy of this table does not let anyone in. user_id, login, name and roles are the
-- user's as ncc-directory answered at sign-in (kept in step by the gateway's user
-- routes); roles is the comma-separated list ("operator,supervisor").
CREATE TABLE sessions (
    id_hash      text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    user_id      bigint NOT NULL,
    login        text NOT NULL,
    name         text NOT NULL DEFAULT '',
    roles        text NOT NULL,
    csrf_token   text NOT NULL CHECK (csrf_token ~ '^[0-9a-f]{64}$'),
    address      text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- Sign-out everywhere and the clean-up of expired rows.
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
