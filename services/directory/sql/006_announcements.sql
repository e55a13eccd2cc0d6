-- Announcements the PBX plays (R23, docs/routing.md): the recording notice
-- ("この通話は録音されます") first of all, and any other message the ward wants
-- to change without the PBX vendor (closed hours, busy lines). A master like
-- the others (history, CSV, scheduled changes); the PBX reads the active
-- ones in GET /api/v1/pbx/routing.

create table announcements (
    id bigserial primary key,
    code text not null,
    name text not null,
    text_ja text not null default '',
    text_en text not null default '',
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    version bigint not null default 1,
    constraint announcements_code_key unique (code)
);

-- The notice R23 requires, so the PBX has one from the first start; the
-- ward edits its words on マスタ管理 → アナウンス.
insert into announcements (code, name, text_ja, text_en) values
    ('recording-notice', '録音のお知らせ',
     'この通話は、応対品質の向上と内容確認のため録音させていただきます。',
     'This call is recorded to improve our service and to confirm what was said.');
