-- ncc-report's own tables (docs/kpi.md): facts folded from the services' events
-- (never read from their tables), one row per contact, so a late or repeated
-- event leaves every figure as it was; the FAQ searches and survey answers;
-- the batch runs with the files they wrote.

-- One row per contact: a phone call (key = its call id), or a record of another
-- channel without a call (key = 'r:' || record id). The call's columns come
-- from ncc.calls.CallStateChanged (newest call_version wins), the record's from
-- ncc.history.RecordChanged (newest record_version wins; the lowest record id
-- owns the columns of a call that has several records).
create table contacts (
    key text primary key,
    at timestamptz,                  -- when it was offered: ringing, else answer, else record start
    is_call boolean not null default false,
    call_version bigint not null default 0,
    ringing_at timestamptz,
    answered_at timestamptz,
    ended_at timestamptz,
    abandoned boolean not null default false,
    call_transferred boolean not null default false,
    operator_id bigint not null default 0,
    operator_name text not null default '',
    record_id bigint,
    record_version bigint not null default 0,
    record_started_at timestamptz,
    record_ended_at timestamptz,
    wrapup_ended_at timestamptz,
    record_transferred boolean not null default false,
    record_status text not null default '',
    channel text not null default 'phone',
    department text not null default '',
    category text not null default '',
    survey_n int not null default 0,     -- survey answers about its record (surveys)
    survey_total int not null default 0, -- the sum of their scores
    updated_at timestamptz not null default now(),
    -- What the figures sum, computed once when a row changes (docs/kpi.md "Definitions"), so
    -- a report over millions of contacts adds up columns instead of evaluating expressions.
    hour smallint generated always as (extract(hour from at at time zone 'Asia/Tokyo')) stored,
    day date generated always as ((at at time zone 'Asia/Tokyo')::date) stored,
    month int generated always as (extract(year from at at time zone 'Asia/Tokyo')::int * 100
        + extract(month from at at time zone 'Asia/Tokyo')::int) stored,
    answered boolean generated always as (answered_at is not null or not is_call) stored,
    transferred boolean generated always as (call_transferred or record_transferred) stored,
    wait_s double precision generated always as (case when is_call and answered_at is not null
        then extract(epoch from answered_at - coalesce(ringing_at, answered_at)) end) stored,
    talk_s double precision generated always as (case when is_call
        then extract(epoch from ended_at - answered_at)
        else extract(epoch from record_ended_at - record_started_at) end) stored,
    acw_s double precision generated always as (case when wrapup_ended_at
        >= coalesce(ended_at, record_ended_at) then extract(epoch from wrapup_ended_at
        - coalesce(ended_at, record_ended_at)) end) stored
);
create index contacts_at on contacts (at);
create index contacts_day on contacts (day);
create index contacts_record on contacts (record_id) where record_id is not null;
create index contacts_live on contacts (ringing_at) where ended_at is null;

-- Where each record's facts went (a record may gain or lose its call id).
create table records (
    record_id bigint primary key,
    version bigint not null default 0,
    contact_key text not null,
    faq_numbers bigint[] not null default '{}',
    started_at timestamptz
);
create index records_started_at on records (started_at);

-- FAQ numbers cited by records (利用FAQ), by the day (Asia/Tokyo) the record started: kept
-- by the record handler (the record's old numbers out, its new ones in), so the ranking of a
-- year adds up days, not millions of records.
create table faq_usage (
    day date not null,
    number bigint not null,
    used bigint not null default 0,
    primary key (day, number)
);

create table surveys (
    message_id bigint primary key,
    record_id bigint not null default 0,
    satisfaction int not null check (satisfaction between 1 and 5),
    resolved boolean,
    answered_at timestamptz not null
);
create index surveys_answered_at on surveys (answered_at);
create index surveys_record on surveys (record_id);

create table faq_searches (
    search_id text primary key,
    searched_at timestamptz not null,
    resident boolean not null default false,
    hits bigint not null default 0,
    query_hash text not null default '',
    query text,                      -- only for searches without hits
    shown bigint[] not null default '{}',
    shown_questions text[] not null default '{}'
);
create index faq_searches_at on faq_searches (searched_at);

-- The searches by day (Asia/Tokyo), kept as each search is first stored, so a report adds up
-- days: searches and those without hits; the FAQs shown among the first hits; the queries
-- that found nothing.
create table search_daily (
    day date primary key,
    searches bigint not null default 0,
    zero bigint not null default 0
);
create table faq_shown_daily (
    day date not null,
    number bigint not null,
    shown bigint not null default 0,
    question text not null default '',
    primary key (day, number)
);
create table zero_hit_daily (
    day date not null,
    query text not null,
    count bigint not null default 0,
    resident bigint not null default 0,
    last_at timestamptz not null,
    primary key (day, query)
);

-- ncc-report --batch: every run, with the file it wrote (a past run's file is
-- downloaded from here: the batch may have run on another machine).
create table runs (
    id bigserial primary key,
    kind text not null check (kind in ('daily', 'monthly')),
    period text not null,
    format text not null check (format in ('csv', 'xlsx')),
    out text not null,
    status text not null check (status in ('ok', 'failed')),
    exit_code int not null default 0,
    error text not null default '',
    bytes bigint not null default 0,
    sha256 text not null default '',
    content bytea,
    started_at timestamptz not null,
    finished_at timestamptz not null default now()
);
create index runs_finished on runs (finished_at desc, id desc);

-- The figures of whole days, by grouping (0 hour .. 6 channel, as report_groups) and service
-- level, kept once a report has added them up (kpi.c): a report of whole days adds up these
-- rows and computes only the days not here. Any change of a contact (insert, update, delete)
-- forgets its days (old and new) in the same transaction, through the triggers below.
create table kpi_days (
    grp smallint not null,
    sl int not null,
    day date not null,
    primary key (grp, sl, day)
);
create index kpi_days_day on kpi_days (day);
create table kpi_cache (
    grp smallint not null,
    sl int not null,
    day date not null,
    key text not null,
    name text,
    offered bigint not null,
    calls_offered bigint not null,
    answered bigint not null,
    abandoned bigint not null,
    within bigint not null,
    wait_sum double precision,
    wait_n bigint not null,
    talk_sum double precision,
    talk_n bigint not null,
    acw_sum double precision,
    acw_n bigint not null,
    handle_sum double precision,
    transferred bigint not null,
    one_stop bigint not null,
    surveys bigint not null,
    score bigint not null,
    primary key (grp, sl, day, key)
);
create index kpi_cache_day on kpi_cache (day);

create function contacts_forget_days() returns trigger language plpgsql
    set search_path from current as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        delete from kpi_days where day in (select distinct day from new_rows);
        delete from kpi_cache where day in (select distinct day from new_rows);
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        delete from kpi_days where day in (select distinct day from old_rows);
        delete from kpi_cache where day in (select distinct day from old_rows);
    end if;
    return null;
end
$$;
create trigger contacts_forget_inserted after insert on contacts
    referencing new table as new_rows for each statement execute function contacts_forget_days();
create trigger contacts_forget_updated after update on contacts
    referencing old table as old_rows new table as new_rows
    for each statement execute function contacts_forget_days();
create trigger contacts_forget_deleted after delete on contacts
    referencing old table as old_rows for each statement execute function contacts_forget_days();
