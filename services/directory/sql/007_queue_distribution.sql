-- How a queue shares its calls among the operators who may take them (R25:
-- load balancing); the PBX applies it (docs/routing.md).
alter table queues add column distribution text not null default 'longest_idle';
