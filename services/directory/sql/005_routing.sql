-- Queues, skills and routing rules (R25): the ACD settings an administrator
-- edits in the browser and the PBX reads (GET /api/v1/pbx/routing,
-- docs/routing.md). They are masters like the others (services/directory/
-- masters_kinds.c): history, CSV, scheduled changes and live propagation come
-- with them. Lists of skill codes are text, the codes separated by one space
-- ("tax pension"), checked by the directory against `skills` (no foreign
-- key can hold a list).

create table skills (
    id bigserial primary key,
    code text not null,
    name text not null,
    sort_order integer not null default 0,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint skills_code_key unique (code)
);

-- A queue calls wait in; an operator serves it when it has every skill the
-- queue asks for. After max_wait_seconds (0: no limit) a waiting call moves
-- to the overflow queue.
create table queues (
    id bigserial primary key,
    code text not null,
    name text not null,
    department_code text,
    skills text not null default '',
    priority integer not null default 0,
    max_wait_seconds integer not null default 0,
    overflow_code text,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint queues_code_key unique (code),
    constraint queues_department foreign key (department_code)
        references departments (code) deferrable initially deferred,
    constraint queues_overflow foreign key (overflow_code) references queues (code)
        deferrable initially deferred,
    constraint queues_not_own_overflow check (overflow_code is distinct from code)
);
create index queues_department_code on queues (department_code);
create index queues_overflow_code on queues (overflow_code);

-- Which queue a call goes to: the active rule with the lowest priority whose
-- conditions all hold (an empty condition always holds).
create table routing_rules (
    id bigserial primary key,
    code text not null,
    name text not null,
    priority integer not null default 0,
    called_number text not null default '',
    ivr_choice text not null default '',
    weekdays text not null default '',
    hours text not null default '',
    queue_code text not null,
    skills text not null default '',
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint routing_rules_code_key unique (code),
    constraint routing_rules_queue foreign key (queue_code) references queues (code)
        deferrable initially deferred
);
create index routing_rules_queue_code on routing_rules (queue_code);

-- The skills of each user (operators).
alter table users add column skills text not null default '';
