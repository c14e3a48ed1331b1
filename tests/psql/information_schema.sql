-- information_schema over a small schema; the expected output is PostgreSQL 15's.
CREATE TABLE is_parent (
    id integer PRIMARY KEY,
    code varchar(10) NOT NULL UNIQUE,
    label text DEFAULT 'none',
    price numeric(8,3),
    ratio double precision,
    created timestamptz,
    day date
);
CREATE TABLE is_child (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id integer REFERENCES is_parent (id) ON DELETE CASCADE ON UPDATE SET NULL,
    qty smallint CHECK (qty > 0),
    tags text[]
);
CREATE SEQUENCE is_numbers START 5 INCREMENT 5 MAXVALUE 100 CYCLE;
CREATE VIEW is_view AS SELECT id, code FROM is_parent;
SELECT table_name, table_type FROM information_schema.tables
 WHERE table_schema = 'public' ORDER BY table_name;
SELECT table_name, column_name, ordinal_position, column_default, is_nullable, data_type,
       character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale,
       datetime_precision, udt_name, is_identity, identity_generation
  FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position;
SELECT constraint_name, table_name, constraint_type, is_deferrable, initially_deferred
  FROM information_schema.table_constraints WHERE table_schema = 'public' AND constraint_type <> 'CHECK'
 ORDER BY constraint_name;
SELECT constraint_name, table_name, column_name, ordinal_position, position_in_unique_constraint
  FROM information_schema.key_column_usage WHERE table_schema = 'public' ORDER BY constraint_name, ordinal_position;
SELECT constraint_name, unique_constraint_name, match_option, update_rule, delete_rule
  FROM information_schema.referential_constraints WHERE constraint_schema = 'public';
SELECT table_name, column_name, constraint_name FROM information_schema.constraint_column_usage
 WHERE table_schema = 'public' AND constraint_name NOT LIKE '%not_null' ORDER BY constraint_name, column_name;
SELECT sequence_name, data_type, numeric_precision, start_value, minimum_value, maximum_value, increment, cycle_option
  FROM information_schema.sequences WHERE sequence_schema = 'public' ORDER BY sequence_name;
SELECT table_name FROM information_schema.views WHERE table_schema = 'public';
SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('public', 'information_schema') ORDER BY 1;
