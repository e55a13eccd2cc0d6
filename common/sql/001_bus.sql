-- The bus tables every service schema gets first (docs/bus.md). Applied with
-- search_path set to the service's own schema: names are unqualified.

-- Events waiting to be published and already published. A row is written in
-- the same transaction as the change it announces (ncc_outbox_add); the
-- publisher gives committed rows their sequence number (seq) later, under an
-- advisory lock, so seq is gapless per publisher. published_at: when the row
-- received its seq (it is sent on the PUB socket right after that commit).
create table if not exists outbox (
    id bigserial primary key,
    seq bigint unique,
    type text not null,
    trace_id text,
    actor_id text,
    payload bytea not null,
    created_at timestamptz not null default now(),
    published_at timestamptz
);

-- The publisher's queue: rows still without a sequence number.
create index if not exists outbox_unsequenced on outbox (id) where seq is null;
-- Retention (ncc_publisher_prune).
create index if not exists outbox_published_at on outbox (published_at) where seq is not null;

-- The last sequence number given out (one row).
create table if not exists outbox_state (
    id int primary key check (id = 1),
    last_seq bigint not null
);
insert into outbox_state (id, last_seq) values (1, 0) on conflict (id) do nothing;

-- Per publisher, the last sequence number this service has applied.
create table if not exists inbox_cursor (
    publisher text primary key,
    last_seq bigint not null
);
