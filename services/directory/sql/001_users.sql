-- Users and roles (R9, R18, R27). Applied with search_path set to the
-- directory schema. Users are never deleted (records refer to them): an
-- administrator retires them (active = false).
create table users (
    id bigserial primary key,
    login text not null,
    name text not null default '',
    roles text[] not null,
    extension text,
    -- Argon2id, PHC string format ($argon2id$v=19$m=..,t=..,p=..$salt$hash).
    password_hash text,
    -- The TOTP secret (base32), encrypted with ncc_encrypt under the context
    -- "directory.users.totp_secret"; NULL = not enrolled.
    totp_secret text,
    -- The last TOTP time step accepted: a code of that step or earlier is a replay.
    totp_last_step bigint not null default 0,
    active boolean not null default true,
    -- Lock-out after too many failed sign-ins; failures before
    -- failures_reset_at (the last success, lock or unlock) no longer count.
    locked_until timestamptz,
    failures_reset_at timestamptz,
    last_login_at timestamptz,
    password_changed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint users_roles_known check (
        cardinality(roles) > 0
        and roles <@ array['operator', 'supervisor', 'admin', 'staff']::text[]),
    constraint users_login_shape check (length(login) between 1 and 64)
);
create unique index users_login_key on users (lower(login));
create unique index users_extension_key on users (extension)
    where active and extension is not null;

-- Failed sign-ins, for the per-account and per-address throttles. Rows older
-- than the longest window are pruned.
create table login_failures (
    id bigserial primary key,
    user_id bigint references users (id),
    address text not null default '',
    reason text not null,
    at timestamptz not null default now()
);
create index login_failures_user on login_failures (user_id, at);
create index login_failures_address on login_failures (address, at);
create index login_failures_at on login_failures (at);
