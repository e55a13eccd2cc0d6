-- Masters (R4, R5, R8): departments (所管課), the phone book of transfer
-- targets, categories, the record choice lists (受付区分, 対応区分) and FAQ
-- classes; their change history and the changes scheduled for a date.
-- services/directory/masters*.c reads and writes them from one table of
-- kinds (docs/masters.md). Codes are the keys other data uses; they never
-- change. References between masters are foreign keys on the codes,
-- deferred so that an import may hold rows that refer to each other in any
-- order. An entry that is referenced is retired (active = false), not
-- deleted.

create table departments (
    id bigserial primary key,
    code text not null,
    name text not null,
    parent_code text,
    phone text not null default '',
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint departments_code_key unique (code),
    constraint departments_parent foreign key (parent_code) references departments (code)
        deferrable initially deferred,
    constraint departments_not_own_parent check (parent_code is distinct from code)
);
create index departments_parent_code on departments (parent_code);

create table directory_entries (
    id bigserial primary key,
    code text not null,
    department_code text not null,
    section text not null default '',
    name text not null,
    phone text not null,
    hours text not null default '',
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint directory_entries_code_key unique (code),
    constraint directory_entries_department foreign key (department_code)
        references departments (code) deferrable initially deferred
);
create index directory_entries_department_code on directory_entries (department_code);

create table categories (
    id bigserial primary key,
    code text not null,
    name text not null,
    sort_order integer not null default 0,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint categories_code_key unique (code)
);

-- 受付区分
create table reception_types (
    id bigserial primary key,
    code text not null,
    name text not null,
    sort_order integer not null default 0,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint reception_types_code_key unique (code)
);

-- 対応区分
create table handling_types (
    id bigserial primary key,
    code text not null,
    name text not null,
    sort_order integer not null default 0,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint handling_types_code_key unique (code)
);

create table faq_classes (
    id bigserial primary key,
    code text not null,
    name text not null,
    parent_code text,
    department_code text,
    sort_order integer not null default 0,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint faq_classes_code_key unique (code),
    constraint faq_classes_parent foreign key (parent_code) references faq_classes (code)
        deferrable initially deferred,
    constraint faq_classes_department foreign key (department_code)
        references departments (code) deferrable initially deferred,
    constraint faq_classes_not_own_parent check (parent_code is distinct from code)
);
create index faq_classes_parent_code on faq_classes (parent_code);
create index faq_classes_department_code on faq_classes (department_code);

-- One change set: one API request, one import, or one scheduled change
-- applied. Its id is the change id of the MasterChanged event; change sets
-- are written under one advisory lock, so ids commit in order.
create table master_changes (
    id bigserial primary key,
    kind text not null,
    op text not null,
    source text not null,
    actor_id text not null default '',
    actor_login text not null default '',
    actor_role text not null default '',
    address text not null default '',
    scheduled_id bigint,
    entries integer not null default 0,
    effective_at timestamptz not null,
    at timestamptz not null default clock_timestamp()
);
comment on table master_changes is 'ncc:append-only change sets of the masters (docs/masters.md)';
create index master_changes_kind on master_changes (kind, id);

-- Every change of every entry (R8): before and after as JSON objects of the
-- entry's fields (absent before a creation, after a deletion).
create table master_history (
    id bigserial primary key,
    change_id bigint not null references master_changes (id),
    kind text not null,
    code text not null,
    op text not null check (op in ('created', 'updated', 'deleted', 'retired')),
    before jsonb,
    after jsonb,
    actor_id text not null default '',
    actor_login text not null default '',
    source text not null,
    scheduled_id bigint,
    at timestamptz not null default clock_timestamp()
);
comment on table master_history is 'ncc:append-only change history of the masters (docs/masters.md)';
create index master_history_kind_code on master_history (kind, code, id);
create index master_history_change on master_history (change_id);

-- Changes waiting for their date. `payload` holds the request: the fields
-- (create, update), or the CSV as UTF-8 text and the replace flag (import).
-- A timer in every copy of ncc-directory applies what is due, one change
-- per transaction, taking the row FOR UPDATE SKIP LOCKED so no change is
-- applied twice.
create table scheduled_changes (
    id bigserial primary key,
    kind text not null,
    op text not null check (op in ('create', 'update', 'delete', 'import')),
    code text,
    target_id bigint,
    payload jsonb not null default '{}',
    csv text,
    rows integer,
    effective_at timestamptz not null,
    status text not null default 'pending'
        check (status in ('pending', 'applied', 'failed', 'cancelled')),
    created_by_id text not null default '',
    created_by_login text not null default '',
    created_by_role text not null default '',
    created_by_address text not null default '',
    created_at timestamptz not null default now(),
    applied_at timestamptz,
    change_id bigint,
    error text
);
create index scheduled_changes_due on scheduled_changes (effective_at, id) where status = 'pending';
create index scheduled_changes_kind on scheduled_changes (kind, status);
