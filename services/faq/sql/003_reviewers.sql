-- ncc-faq: department reviewers (所管課の確認者; docs/faq.md "States"). The
-- spec (6.2(5)) asks that the department that owns an FAQ confirms it before
-- it is registered: when a department has reviewers, only one of them may
-- approve (publish) its FAQs. Administrators replace a department's list
-- (PUT /api/v1/faq-reviewers/{department_id}, audited as
-- faq_reviewers.update); a reviewer kept by a change keeps who added them
-- and when. Schema faq (the search_path); the daemons' role gets its DML by
-- ncc_db_grant_app like every table of the schema.

CREATE TABLE reviewers (
    department_id bigint NOT NULL CHECK (department_id > 0), -- ncc-directory's department id
    user_id       bigint NOT NULL CHECK (user_id > 0),       -- ncc-directory's user id
    login         text NOT NULL,                             -- the user's login when added
    added_by      text NOT NULL DEFAULT '',                  -- login of the administrator
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (department_id, user_id)
);
-- What a user reviews (the approval queue of a staff reviewer).
CREATE INDEX reviewers_user ON reviewers (user_id);
