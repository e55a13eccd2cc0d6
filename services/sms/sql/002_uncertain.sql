-- Submits whose outcome is unknown (issue 8, docs/sms.md "Delivery guarantees").
-- Before a submit goes to the carrier the message is committed as
-- 'submitting'; the carrier's answer (its message ids) sets it back to 'idle'
-- with the message sent. A message still 'submitting' when its sender lost
-- the answer (the connection dropped, no answer in time, the copy died and
-- its lease ran out) is 'uncertain': it is never taken again by a sender; a
-- delivery receipt that names no known message id (an orphan) is matched to
-- it by what SMPP 3.4 Appendix B receipts carry (the destination, the first
-- 20 characters of the text, the submit date); without one it ends expired
-- after NCC_SMS_UNCERTAIN_WAIT_S with a reason that says so.
alter table messages add column submit_state text not null default 'idle'
    check (submit_state in ('idle', 'submitting', 'uncertain'));
-- When the last submit went out (a receipt's submit date is matched to it).
alter table messages add column submitted_at timestamptz;
-- When its outcome became unknown (kept once set: the message's parts that
-- have no provider id yet are the ones still unknown).
alter table messages add column uncertain_at timestamptz;
-- No index names these columns, so that marking a message submitting stays a
-- HOT update: the look-ups go through messages_due (status 'queued'),
-- messages_sent and messages_to_index.

-- What an orphan receipt carries for the match, never in plain text: the
-- blind index of its source address (the destination, as messages.to_index),
-- the blind index of its text: field (context sms.receipt.text, over the hex
-- of its bytes; '' when it had none) and its submit date.
alter table receipts add column to_index text;
alter table receipts add column text_index text;
alter table receipts add column submit_at timestamptz;
create index receipts_orphans on receipts (to_index) where not applied and to_index is not null;
