-- A psql session against Cairn: DDL, DML, a transaction block, and errors.
-- Run by crates/server/tests/psql.rs; its output must equal session.out.
CREATE TABLE inventory (sku text PRIMARY KEY, qty integer NOT NULL, price numeric(8,2));
INSERT INTO inventory VALUES ('apple', 10, 0.5), ('pear', 4, 0.75), ('plum', 0, NULL);
SELECT * FROM inventory ORDER BY sku;
UPDATE inventory SET qty = qty - 1 WHERE sku = 'apple' RETURNING sku, qty;
SELECT count(*) AS items, sum(qty) AS total FROM inventory;
BEGIN;
DELETE FROM inventory WHERE qty = 0;
SELECT sku FROM inventory ORDER BY sku;
ROLLBACK;
SELECT sku FROM inventory WHERE price IS NULL;
INSERT INTO inventory VALUES ('apple', 1, 1);
INSERT INTO inventory (sku, qty) VALUES ('fig', NULL);
SELECT qty / 0 FROM inventory;
SELEC 1;
BEGIN;
SELECT missing FROM inventory;
SELECT 1;
COMMIT;
\x on
SELECT * FROM inventory WHERE sku = 'pear';
\x off
DROP TABLE inventory;
-- A scalar subquery's column is named after its one column.
SELECT (SELECT 1 AS x), (SELECT count(*) FROM (VALUES (1)) AS v (n)), EXISTS (SELECT 1);
