-- When the live figures were last pushed on the timer, by any copy of ncc-report: with several
-- copies only the one that moves this row pushes (one metrics.live a second, not one per copy).
create table live_push (
    id int primary key check (id = 1),
    pushed_at timestamptz not null
);
insert into live_push (id, pushed_at) values (1, '-infinity');
