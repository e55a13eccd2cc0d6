-- ncc-faq: learning from operators (docs/faq.md "Learning from operators").
-- A staff user who opened an FAQ from the results of a search, or put an FAQ
-- found by a search into a record's 利用FAQ, says that those words led to
-- that FAQ. One user counts once per FAQ and words (the same click again
-- changes nothing). Schema faq (the search_path); the daemons' role gets its
-- DML by ncc_db_grant_app like every table of the schema.

CREATE TABLE clicks (
    id      bigserial PRIMARY KEY,
    faq_id  bigint NOT NULL REFERENCES faqs (id) ON DELETE CASCADE,
    q       text NOT NULL CHECK (q <> ''),       -- the words as typed (what the analysis reads)
    q_norm  text NOT NULL CHECK (q_norm <> ''),  -- the same words as faq_normalize gives them
    user_id bigint NOT NULL,                     -- the staff user (ncc-directory's id)
    at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (faq_id, q_norm, user_id)
);
-- Each copy reads the clicks of the last minutes every second (faq_clicks.c).
CREATE INDEX clicks_at ON clicks (at);
