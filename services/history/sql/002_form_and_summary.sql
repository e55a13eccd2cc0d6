-- The record form setting (R3, R38; docs/record-form.md) and the final call
-- summary (R30; docs/history.md). Applied with search_path set to the
-- history schema.

-- Fields of the ward's own (x_...): {"x_name": "text value", ...}. Checked
-- by ncc-history against the record form setting it follows.
alter table records add column extra jsonb not null default '{}'::jsonb;
alter table records add constraint records_extra_object check (jsonb_typeof(extra) = 'object');

-- Statuses come from the setting now (any code of [a-z][a-z0-9_]{0,31});
-- ncc-history checks them and their transitions against it.
alter table records drop constraint records_status_known;
alter table records add constraint records_status_code check (status ~ '^[a-z][a-z0-9_]{0,31}$');

-- Who wrote the summary: '' nobody, 'user' a person (through the API or the
-- CSV import: never overwritten by ncc-summary), 'summary' ncc-summary's
-- final CallSummary, of version summary_version.
alter table records add column summary_source text not null default ''
    constraint records_summary_source_known check (summary_source in ('', 'user', 'summary'));
alter table records add column summary_version bigint not null default 0;
update records set summary_source = 'user' where summary <> '';

-- Final summaries that arrived before the record of their call: applied
-- when the record is made (from the call or through the API), then deleted.
create table pending_summaries (
    call_id text primary key,
    version bigint not null,
    summary text not null,
    received_at timestamptz not null default now()
);
