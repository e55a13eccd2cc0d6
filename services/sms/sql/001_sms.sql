-- SMS to residents (R44, docs/sms.md). Applied with search_path set to the
-- sms schema. Encrypted columns (AES-256-GCM, ncc/crypto.h), each with its
-- context: messages.to_enc (sms.to), messages.body_enc (sms.body: variables
-- and the survey link), opt_outs.to_enc (sms.opt_out). Their
-- blind indexes (HMAC-SHA256 of the E.164 number, context sms.to.index) are
-- messages.to_index and opt_outs.to_index.

create table templates (
    id bigserial primary key,
    name text not null,
    body text not null,
    urgent boolean not null default false,
    active boolean not null default true,
    version bigint not null default 1,
    updated_at timestamptz not null default now(),
    updated_by text not null default '',
    constraint templates_name_key unique (name)
);

-- Every version of every template, for the history (the newest is the template).
create table template_versions (
    template_id bigint not null references templates (id),
    version bigint not null,
    name text not null,
    body text not null,
    urgent boolean not null,
    active boolean not null,
    changed_at timestamptz not null default now(),
    changed_by text not null default '',
    primary key (template_id, version)
);

-- The outbox of messages. status is what people see; the sender's own
-- states: queued rows are due at next_attempt_at; a row being sent is
-- 'queued' with lease_until in the future (a crashed sender's lease runs out
-- and the row is taken again).
create table messages (
    id bigserial primary key,
    idempotency_key text not null,
    request_hash text not null,
    status text not null default 'queued'
        check (status in ('queued', 'sent', 'delivered', 'failed', 'expired')),
    to_enc text not null,
    to_index text not null,
    template_id bigint not null references templates (id),
    record_id bigint,
    body_enc text not null,
    encoding text not null,
    parts integer not null,
    urgent boolean not null default false,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease_until timestamptz,
    provider text not null default '',
    error text not null default '',
    created_by text not null default '',
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    sent_at timestamptz,
    delivered_at timestamptz,
    finished_at timestamptz,
    constraint messages_idempotency_key unique (idempotency_key)
);
create index messages_due on messages (next_attempt_at, id) where status = 'queued';
create index messages_sent on messages (sent_at) where status = 'sent';
create index messages_record on messages (record_id, id);
create index messages_to_index on messages (to_index, sent_at);
create index messages_creator on messages (created_by, created_at);

-- One row per part given to the provider (SMPP: one per concatenated part,
-- each with its own message id and receipt; HTTP: one per message).
create table parts (
    message_id bigint not null references messages (id),
    n integer not null,
    provider text not null,
    provider_id text not null,
    status text not null default 'sent' check (status in ('sent', 'delivered', 'failed', 'expired')),
    primary key (message_id, n)
);
create unique index parts_provider_id on parts (provider, provider_id);

-- Delivery receipts as taken: the same (provider, id, status) twice is taken once.
-- A receipt for a provider id not known yet (the callback came before the
-- sender stored the id) waits here unapplied.
create table receipts (
    provider text not null,
    provider_id text not null,
    status text not null,
    error text not null default '',
    applied boolean not null default false,
    received_at timestamptz not null default now(),
    primary key (provider, provider_id, status)
);
create index receipts_waiting on receipts (provider, provider_id) where not applied;

-- The lifecycle of each message. A message reaches a final status
-- (delivered, failed, expired) exactly once: the unique index refuses a second.
create table message_events (
    id bigserial primary key,
    message_id bigint not null references messages (id),
    status text not null,
    detail text not null default '',
    at timestamptz not null default now(),
    final boolean not null default false
);
create index message_events_message on message_events (message_id, id);
create unique index message_events_final on message_events (message_id) where final;

create table opt_outs (
    to_index text primary key,
    to_enc text not null,
    reason text not null default '',
    created_by text not null default '',
    created_at timestamptz not null default now()
);

-- Satisfaction surveys: the token is random (256 bits) and stored as its
-- SHA-256, so a database read does not give working links.
create table surveys (
    token_hash text primary key,
    message_id bigint not null references messages (id),
    record_id bigint,
    expires_at timestamptz not null,
    satisfaction integer check (satisfaction between 1 and 5),
    resolved boolean,
    comment text,
    answered_at timestamptz,
    created_at timestamptz not null default now()
);
create unique index surveys_message on surveys (message_id);
create index surveys_record on surveys (record_id);
