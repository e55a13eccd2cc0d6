-- The record form (R3, R38): the fields of an interaction record (応対履歴)
-- as the operator's form shows them (labels, order, required, visible,
-- choice lists) and the statuses of a record with their allowed transitions.
-- Administrators edit it in the browser; services/directory/record_form.c
-- checks every definition before it is stored (docs/record-form.md), and
-- ncc-history validates records against it. `definition` is the JSON of
-- ncc.directory.RecordFormDefinition (proto/settings.proto).

-- The current form: exactly one row.
create table record_form (
    id boolean primary key default true check (id),
    definition jsonb not null,
    version bigint not null default 1,
    updated_at timestamptz not null default now(),
    updated_by_id text not null default '',
    updated_by text not null default ''
);

-- Every change (R8): who, when, the definition before and after.
create table record_form_history (
    id bigserial primary key,
    version bigint not null,
    before jsonb,
    after jsonb not null,
    actor_id text not null default '',
    actor_login text not null default '',
    actor_role text not null default '',
    address text not null default '',
    at timestamptz not null default clock_timestamp()
);
comment on table record_form_history is 'ncc:append-only change history of the record form (docs/record-form.md)';

-- The default: the record fields of API.md in the order an operator fills
-- them, and open -> in_progress -> closed (reopened when needed).
insert into record_form (definition) values ($json$
{
  "fields": [
    {"name": "receipt_id", "label_ja": "受付ID", "label_en": "Receipt ID",
     "type": "text", "required": false, "visible": true, "max_length": 32},
    {"name": "channel", "label_ja": "受付チャネル", "label_en": "Channel",
     "type": "choice", "required": true, "visible": true, "options": [
       {"code": "phone", "label_ja": "電話", "label_en": "Phone"},
       {"code": "sms", "label_ja": "SMS", "label_en": "SMS"},
       {"code": "form", "label_ja": "フォーム", "label_en": "Web form"},
       {"code": "chat", "label_ja": "チャット", "label_en": "Chat"},
       {"code": "line", "label_ja": "LINE", "label_en": "LINE"},
       {"code": "visit", "label_ja": "来庁", "label_en": "Visit"}]},
    {"name": "started_at", "label_ja": "受付開始日時", "label_en": "Started at",
     "type": "datetime", "required": true, "visible": true},
    {"name": "ended_at", "label_ja": "受付終了日時", "label_en": "Ended at",
     "type": "datetime", "required": false, "visible": true},
    {"name": "wrapup_ended_at", "label_ja": "後処理終了日時", "label_en": "Wrap-up ended at",
     "type": "datetime", "required": false, "visible": true},
    {"name": "operator_name", "label_ja": "受付者氏名", "label_en": "Operator",
     "type": "text", "required": false, "visible": true, "max_length": 100},
    {"name": "reception_type", "label_ja": "受付区分", "label_en": "Reception type",
     "type": "choice", "required": false, "visible": true, "choices": "reception-types"},
    {"name": "department_id", "label_ja": "問い合わせ受付区分", "label_en": "Department",
     "type": "choice", "required": false, "visible": true, "choices": "departments"},
    {"name": "category", "label_ja": "カテゴリー", "label_en": "Category",
     "type": "choice", "required": false, "visible": true, "choices": "categories"},
    {"name": "handling_type", "label_ja": "対応区分", "label_en": "Handling type",
     "type": "choice", "required": false, "visible": true, "choices": "handling-types"},
    {"name": "inquiry", "label_ja": "受付内容", "label_en": "Inquiry",
     "type": "textarea", "required": true, "visible": true, "max_length": 4000},
    {"name": "response", "label_ja": "対応内容", "label_en": "Response",
     "type": "textarea", "required": false, "visible": true, "max_length": 4000},
    {"name": "faq_ids", "label_ja": "利用FAQ", "label_en": "FAQs used",
     "type": "faq_ids", "required": false, "visible": true},
    {"name": "transfer_to", "label_ja": "転送先", "label_en": "Transferred to",
     "type": "choice", "required": false, "visible": true, "choices": "directory"},
    {"name": "summary", "label_ja": "AI要約", "label_en": "AI summary",
     "type": "textarea", "required": false, "visible": true, "max_length": 10000},
    {"name": "call_id", "label_ja": "通話ID", "label_en": "Call ID",
     "type": "text", "required": false, "visible": false, "max_length": 64},
    {"name": "operator_id", "label_ja": "受付者ID", "label_en": "Operator ID",
     "type": "text", "required": false, "visible": false, "max_length": 32}
  ],
  "statuses": [
    {"code": "open", "label_ja": "未対応", "label_en": "Open",
     "initial": true, "final": false, "next": ["in_progress", "closed"]},
    {"code": "in_progress", "label_ja": "対応中", "label_en": "In progress",
     "initial": false, "final": false, "next": ["open", "closed"]},
    {"code": "closed", "label_ja": "完了", "label_en": "Closed",
     "initial": false, "final": true, "next": ["in_progress"]}
  ]
}
$json$::jsonb);
