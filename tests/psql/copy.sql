-- COPY FROM STDIN and TO STDOUT through psql, in text, CSV and custom formats, with the
-- errors PostgreSQL reports for bad data (SQLSTATE 22P04 / 22P02 and the line as CONTEXT).
\set VERBOSITY default
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(8,2), added date DEFAULT '2024-01-01', active boolean, data bytea);
COPY items (name, price, active, data) FROM STDIN;
apple	1.50	t	\\x00ff
tab\there	\N	f	\N
new\nline	2	true	\\x
back\\slash	0.125	\N	\\x41
octal \101\x42	3	false	\N
\.
SELECT id, name, price, added, active, data FROM items ORDER BY id;
COPY items TO STDOUT;
COPY items (id, name) TO STDOUT WITH (FORMAT csv, HEADER true);
COPY (SELECT id, name FROM items WHERE id > 3 ORDER BY id) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *);
COPY (SELECT id, price FROM items ORDER BY id) TO STDOUT WITH (DELIMITER '|', NULL 'none');
COPY items (name, price, added) FROM STDIN WITH (FORMAT csv, HEADER);
name,price,added
"quoted, with comma",4.00,2024-05-06
"multi
line",,
"""doubled""",5,
\.
SELECT id, name, price, added FROM items WHERE id > 5 ORDER BY id;
COPY items (name, price) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (price), FORCE_NULL (name));
"",7
\.
COPY items (name, data) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (data));
empty,
\.
COPY items (name, price) FROM STDIN WITH (FORMAT csv, NULL 'NA', FORCE_NOT_NULL (name));
NA,NA
\.
SELECT name, price FROM items WHERE name = 'NA';
CREATE TABLE pairs (a int, b int);
COPY pairs FROM STDIN;

\.
DROP TABLE pairs;
SELECT id, name, data FROM items WHERE id > 8 ORDER BY id;
COPY items (name, price) FROM STDIN WITH (DELIMITER ';', NULL '-');
semi;-
\.
SELECT id, name, price FROM items WHERE id = 10;
-- Bad data: nothing of the statement is kept.
COPY items (name, price) FROM STDIN;
ok	1
too	many	fields
\.
COPY items (name, price) FROM STDIN;
ok	1
missing
\.
COPY items (name, price) FROM STDIN;
ok	1
bad	price
\.
COPY items (name, price) FROM STDIN WITH (FORMAT csv);
"never closed,1
\.
COPY items (name) FROM STDIN;
\N
\.
SELECT count(*) FROM items;
-- Bad statements.
COPY items (name) FROM STDIN WITH (QUOTE '"');
COPY items (nope) FROM STDIN;
COPY items (name, name) FROM STDIN;
COPY items FROM STDIN WITH (DELIMITER 'a');
COPY items FROM STDIN WITH (FORMAT binary, HEADER);
COPY nosuch FROM STDIN;
CREATE VIEW cheap AS SELECT name FROM items WHERE price < 2;
COPY cheap TO STDOUT;
COPY (SELECT * FROM cheap ORDER BY name) TO STDOUT;
-- COPY is transactional.
BEGIN;
COPY items (name) FROM STDIN;
rolled back
\.
SELECT count(*) FROM items;
ROLLBACK;
SELECT count(*) FROM items;
BEGIN;
COPY items (name, price) FROM STDIN;
x	y
\.
SELECT 1;
ROLLBACK;
-- psql's \copy uses the same protocol.
\copy items (name, price) from stdin with csv
copied,8.5
\.
\copy (SELECT name, price FROM items WHERE name = 'copied') to stdout with csv header
DROP VIEW cheap;
DROP TABLE items;
