-- Interaction records (応対履歴; R29, R31-R35, R48; docs/history.md). Applied
-- with search_path set to the history schema.
--
-- Personal data: caller_number is encrypted in the application (AES-256-GCM,
-- context "history.records.caller_number", docs/security-crypto.md) and found
-- through caller_number_bidx, the HMAC blind index of its digits (context
-- "history.records.caller_number"). Free text (inquiry, response, summary) is
-- kept in clear so that it can be searched; reads of records are audited by
-- the gateway.

-- The fiscal year (April to March, Asia/Tokyo, which has no daylight saving
-- time) of a moment: 2027-04-01T00:00+09:00 .. 2028-03-31T23:59+09:00 is 2027.
create function fiscal_year_of(t timestamptz) returns integer
    language sql immutable parallel safe
    return (extract(year from (t at time zone 'Asia/Tokyo') - interval '3 months'))::integer;

create table records (
    id bigserial primary key,
    -- 受付ID: R<fiscal year>-<number in that year, 6 digits or more>.
    receipt_id text not null,
    fiscal_year integer not null generated always as (fiscal_year_of(started_at)) stored,
    -- The PBX's call (phone records made from a call); NULL otherwise.
    call_id text,
    channel text not null,
    operator_id bigint not null default 0,
    operator_name text not null default '',
    started_at timestamptz not null,
    ended_at timestamptz,
    wrapup_ended_at timestamptz,
    reception_type text not null default '',
    department_id text not null default '',
    handling_type text not null default '',
    faq_ids bigint[] not null default '{}',
    category text not null default '',
    inquiry text not null default '',
    response text not null default '',
    transfer_to text not null default '',
    summary text not null default '',
    status text not null default 'open',
    -- Encrypted (see above); NULL when unknown or withheld.
    caller_number text,
    caller_number_bidx text,
    -- The newest ncc.calls.CallStateChanged version applied (0: none).
    call_version bigint not null default 0,
    -- Who made it: api (a user), call (an answered call), import (CSV, R20).
    source text not null default 'api',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint records_channel_known
        check (channel in ('phone', 'sms', 'form', 'chat', 'line', 'visit')),
    constraint records_status_known check (status in ('open', 'in_progress', 'closed')),
    constraint records_source_known check (source in ('api', 'call', 'import')),
    constraint records_faq_ids_max check (cardinality(faq_ids) <= 3)
);
create unique index records_receipt_id_key on records (receipt_id);
create unique index records_call_id_key on records (call_id) where call_id is not null;
create index records_started_at_idx on records (started_at, id);
create index records_caller_idx on records (caller_number_bidx, started_at)
    where caller_number_bidx is not null;
create index records_operator_idx on records (operator_id, started_at);
create index records_department_idx on records (department_id, started_at);
create index records_category_idx on records (category, started_at);
create index records_status_idx on records (status, started_at);
create index records_fiscal_year_idx on records (fiscal_year);

-- The last receipt number given in each fiscal year.
create table receipt_counters (
    fiscal_year integer primary key,
    last_number bigint not null
);

-- CSV exports: an unfiltered export that was read to its end is what allows
-- the contract-end erase (EraseRecords), as long as nothing changed since.
create table exports (
    id bigserial primary key,
    actor_id text not null default '',
    filtered boolean not null,
    -- The records as the export began: their count and newest change.
    records_at_start bigint not null,
    last_change_at_start timestamptz,
    rows bigint not null default 0,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
