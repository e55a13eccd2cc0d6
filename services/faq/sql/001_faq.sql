-- ncc-faq: the FAQ, its versions, synonyms, the zero-hit log and residents'
-- votes (docs/faq.md). Schema faq (the search_path).

CREATE SEQUENCE faq_numbers START 1;

CREATE TABLE faqs (
    id              bigserial PRIMARY KEY,
    number          bigint NOT NULL UNIQUE CHECK (number > 0),
    question        text NOT NULL,
    answer          text NOT NULL,
    department_id   bigint,
    department_code text NOT NULL DEFAULT '',
    category        text NOT NULL DEFAULT '',
    visibility      text NOT NULL DEFAULT 'internal' CHECK (visibility IN ('public', 'internal')),
    keywords        text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'review', 'published', 'archived')),
    version         bigint NOT NULL DEFAULT 1,
    views           bigint NOT NULL DEFAULT 0,
    helpful         bigint NOT NULL DEFAULT 0,
    not_helpful     bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL DEFAULT '',
    approved_by     text,
    approved_at     timestamptz
);
CREATE INDEX faqs_status ON faqs (status, visibility);

-- Every version of every FAQ (R8): written in the transaction of the change.
CREATE TABLE faq_versions (
    id              bigserial PRIMARY KEY,
    faq_id          bigint NOT NULL,
    version         bigint NOT NULL,
    number          bigint NOT NULL,
    question        text NOT NULL,
    answer          text NOT NULL,
    department_code text NOT NULL,
    category        text NOT NULL,
    visibility      text NOT NULL,
    keywords        text NOT NULL,
    status          text NOT NULL,
    op              text NOT NULL,
    actor_id        text NOT NULL DEFAULT '',
    actor_login     text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faq_versions_faq ON faq_versions (faq_id, version DESC);
COMMENT ON TABLE faq_versions IS 'ncc:append-only';

CREATE TABLE synonym_groups (
    id         bigserial PRIMARY KEY,
    words      text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);

-- Searches that found nothing (R43): what residents and operators looked for.
CREATE TABLE zero_hits (
    id      bigserial PRIMARY KEY,
    q       text NOT NULL,
    public  boolean NOT NULL DEFAULT false,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zero_hits_at ON zero_hits (at);

-- Residents' votes: one per browser (a random id the browser keeps) and FAQ.
-- No address is stored; the rate limit per address is kept in memory.
CREATE TABLE votes (
    faq_id  bigint NOT NULL REFERENCES faqs (id) ON DELETE CASCADE,
    voter   text NOT NULL,
    helpful boolean NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (faq_id, voter)
);

-- Moves whenever an FAQ or a synonym changes, so every copy of ncc-faq
-- rebuilds its search index (checked every second).
CREATE TABLE index_state (
    id       int PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO index_state VALUES (1, 1);
