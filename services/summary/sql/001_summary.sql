-- ncc-summary (docs/summary.md): per call, the masked transcript segments
-- with their emotion scores, and the running then final summary. Only masked
-- text is kept (and encrypted when NCC_DATA_KEYS is set: context
-- summary.masked). due_at is the debounce: a running summary is made once
-- it has passed; final_due asks for the final summary (at hang-up).

create table calls (
    call_id text primary key,
    operator_id bigint not null default 0,
    summary text not null default '',
    summarizer text not null default 'extractive',
    final boolean not null default false,
    final_due boolean not null default false,
    due_at timestamptz,
    ended_seen_at timestamptz,
    anger real not null default 0,
    confusion real not null default 0,
    satisfaction real not null default 0,
    caller_segments integer not null default 0,
    alerted boolean not null default false,
    segments integer not null default 0,
    entities integer not null default 0,
    faqs text not null default '[]',
    version bigint not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index calls_due on calls (due_at) where due_at is not null;
create index calls_final_due on calls (call_id) where final_due;

create table segments (
    call_id text not null references calls (call_id) on delete cascade,
    seq integer not null,
    speaker text not null,
    masked text not null,
    entities integer not null default 0,
    anger real not null default 0,
    confusion real not null default 0,
    satisfaction real not null default 0,
    created_at timestamptz not null default now(),
    primary key (call_id, seq)
);
