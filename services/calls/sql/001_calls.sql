-- Calls from the cloud PBX (docs/pbx-integration.md): one row per call, the
-- events it was folded from, and its transcript. The caller's number and the
-- transcript text are personal data: encrypted by the daemon (AES-256-GCM,
-- ncc/crypto.h; contexts calls.from_number, calls.transcript), the number
-- also as an HMAC blind index of its digits for look-ups.

create table calls (
    id bigserial primary key,
    call_id text not null,
    state text not null default 'ringing'
        check (state in ('ringing', 'answered', 'transferred', 'ended', 'abandoned')),
    from_enc text,
    from_index text,
    to_number text not null default '',
    agent_extension text not null default '',
    operator_id bigint,
    operator_login text not null default '',
    operator_name text not null default '',
    transfer_to text not null default '',
    ringing_at timestamptz,
    answered_at timestamptz,
    transferred_at timestamptz,
    ended_at timestamptz,
    version bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint calls_call_id_key unique (call_id)
);
create index calls_ringing_at on calls (ringing_at desc, id desc);
create index calls_active on calls (state) where state in ('ringing', 'answered', 'transferred');
create index calls_operator on calls (operator_id, ringing_at desc);
create index calls_from_index on calls (from_index);

-- Every event taken, by its id: the same event twice is taken once.
create table call_events (
    event_id text primary key,
    call_id text not null,
    type text not null,
    occurred_at timestamptz not null,
    received_at timestamptz not null default now()
);
create index call_events_call on call_events (call_id, occurred_at);

create table transcript_segments (
    call_id text not null,
    seq integer not null,
    speaker text not null check (speaker in ('caller', 'operator')),
    start_ms integer not null,
    end_ms integer not null,
    text_enc text not null,
    created_at timestamptz not null default now(),
    primary key (call_id, seq)
);
