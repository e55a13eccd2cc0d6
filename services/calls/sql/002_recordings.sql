-- Recordings of calls (R22-R24, docs/pbx-integration.md): the PBX announces
-- one with recording_ready and a URL; ncc-calls fetches it (bounded in size
-- and time, audio only), keeps it encrypted in chunks of 1 MiB (AES-256-GCM,
-- context calls.recording), serves it to supervisors, administrators and
-- the operator of the call, and deletes it after the retention period.

create table recordings (
    call_id text primary key,
    status text not null default 'pending'
        check (status in ('pending', 'fetching', 'stored', 'failed', 'deleted')),
    url_enc text,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    content_type text not null default '',
    bytes bigint not null default 0,
    parts integer not null default 0,
    sha256 text not null default '',
    error text not null default '',
    requested_at timestamptz not null default now(),
    stored_at timestamptz,
    deleted_at timestamptz
);
create index recordings_due on recordings (next_attempt_at) where status = 'pending';
create index recordings_stored on recordings (stored_at) where status = 'stored';

create table recording_chunks (
    call_id text not null references recordings (call_id) on delete cascade,
    n integer not null,
    data_enc text not null,
    primary key (call_id, n)
);
