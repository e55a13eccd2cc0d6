-- The audit log (R17): who did what, from where, with what outcome. Entries
-- are chained: hash = sha256_hex(previous hash || "\n" || canonical entry)
-- (services/directory/audit_chain.c), seq is gapless, assigned under
-- pg_advisory_xact_lock. The application role may only SELECT and INSERT
-- (ncc_db_grant_app reads the comment below); the triggers refuse UPDATE,
-- DELETE and TRUNCATE even to the owner, unless the owner disables them,
-- which the hash chain then reveals (ncc-audit verify).
create table audit_log (
    seq bigint primary key check (seq > 0),
    at timestamptz not null,
    actor_id text not null default '',
    actor_login text not null default '',
    actor_role text not null default '',
    address text not null default '',
    action text not null,
    target text not null default '',
    outcome text not null default '',
    detail text not null default '',
    hash text not null check (hash ~ '^[0-9a-f]{64}$')
);
comment on table audit_log is 'ncc:append-only audit log, hash-chained (docs/directory.md)';
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor_login);
create index audit_log_action on audit_log (action);

create function audit_log_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % refused', tg_op;
end
$$;

create trigger audit_log_no_update_delete
    before update or delete on audit_log
    for each row execute function audit_log_refuse_change();
create trigger audit_log_no_truncate
    before truncate on audit_log
    for each statement execute function audit_log_refuse_change();
