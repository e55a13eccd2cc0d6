-- The x_ columns of an export (the fields of the ward's own), chosen when its first page is
-- written so every later page has the same columns: "x_a,x_b" ('' for none).
alter table exports add column extra_columns text not null default '';
