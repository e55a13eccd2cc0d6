-- POST /api/v1/records with an idempotency_key (docs/history.md "Sending a record twice"):
-- the record a user's key made, so that a request repeated after a time-out or a 503 (which
-- may have been stored all the same) answers that record instead of making a second one.
-- A key belongs to its user; it goes with its record (purge, erase).
create table record_requests (
    actor_id   text not null,
    key        text not null,
    record_id  bigint not null references records (id) on delete cascade,
    created_at timestamptz not null default now(),
    primary key (actor_id, key)
);
create index record_requests_record on record_requests (record_id);
