-- EXPLAIN golden output: which access path and join method the planner chooses.
-- Regenerate after an intended change: CAIRN_BLESS=1 cargo test -p cairn-server --test psql
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, region int);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total numeric(10, 2));
CREATE TABLE order_lines (order_id int, line int, sku text, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE regions (code int PRIMARY KEY, label text);
INSERT INTO regions VALUES (1, 'north'), (2, 'south');
INSERT INTO customers SELECT g, 'c' || g, g % 3 FROM generate_series(1, 20) g;
INSERT INTO orders SELECT g, g % 20 + 1, g * 1.5 FROM generate_series(1, 60) g;
INSERT INTO order_lines SELECT g / 3 + 1, g % 3, 'sku' || (g % 7), g % 5 FROM generate_series(0, 179) g;

-- Single table: primary-key lookup, key range, prefix of a composite key, full scan.
EXPLAIN SELECT name FROM customers WHERE id = 7;
EXPLAIN SELECT name FROM customers WHERE id BETWEEN 3 AND 5;
EXPLAIN SELECT * FROM order_lines WHERE order_id = 4 AND line >= 1;
EXPLAIN SELECT * FROM customers WHERE name = 'c3';
EXPLAIN SELECT * FROM customers WHERE id = 1 FOR UPDATE;

-- The joined table's whole primary key is fixed by the left side: index nested loop.
EXPLAIN SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id;
SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id <= 3 ORDER BY o.id;
EXPLAIN SELECT * FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id AND l.line = 0;

-- Equality on something else than the joined table's key: hash join, built on that table.
EXPLAIN SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id;
EXPLAIN SELECT count(*) FROM orders o JOIN order_lines l ON l.order_id = o.id;
EXPLAIN SELECT * FROM customers c LEFT JOIN regions r ON r.label = c.name;
EXPLAIN SELECT * FROM customers c RIGHT JOIN orders o ON o.customer_id = c.id AND o.total > 10;
EXPLAIN SELECT * FROM customers c FULL JOIN regions r ON r.code = c.region;
SELECT r.label, count(*) FROM customers c JOIN regions r ON r.code = c.region GROUP BY r.label ORDER BY 1;

-- WHERE conditions on one table filter it before the join, except on a NULL-padded side.
EXPLAIN SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.region = 1 AND o.total > 50;
EXPLAIN SELECT * FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL;

-- WHERE conditions between a joined table and those before it join them (comma joins hash
-- or look up keys like explicit ones), except where a later outer join pads those tables.
EXPLAIN SELECT c.name, o.total FROM customers c, orders o WHERE o.customer_id = c.id AND o.total > 50;
EXPLAIN SELECT * FROM orders o, customers c, regions r WHERE c.id = o.customer_id AND r.code = c.region;
EXPLAIN SELECT * FROM customers c JOIN orders o ON true RIGHT JOIN regions r ON r.code = c.region WHERE o.customer_id = c.id;
SELECT count(*) FROM orders o, customers c, regions r WHERE c.id = o.customer_id AND r.code = c.region;
-- A comma list is joined in the written order, except that a table linked by a WHERE
-- equality to those already joined comes before one that is not (here customers, then regions).
EXPLAIN SELECT * FROM orders o, regions r, customers c WHERE c.id = o.customer_id AND r.code = c.region;

-- A secondary index serves equalities and ranges on its leading columns when the primary key
-- is not fixed; the whole WHERE clause still filters the rows it finds.
CREATE INDEX orders_customer ON orders (customer_id, total);
EXPLAIN SELECT * FROM orders WHERE customer_id = 3;
EXPLAIN SELECT * FROM orders WHERE customer_id = 3 AND total > 20;
EXPLAIN SELECT * FROM orders WHERE id = 4 AND customer_id = 3;
SELECT count(*) FROM orders WHERE customer_id = 3 AND total > 20;

-- ORDER BY in the order a scan reads (key or index order, ascending, after the columns
-- fixed by equality) needs no sort, so LIMIT stops the scan; with LIMIT, a matching index is
-- read in order instead of sorting the table. DESC, or an order no key has, sorts.
EXPLAIN SELECT * FROM orders ORDER BY id LIMIT 3;
EXPLAIN SELECT * FROM orders WHERE id > 50 ORDER BY id LIMIT 3;
EXPLAIN SELECT * FROM order_lines WHERE order_id = 4 ORDER BY line;
EXPLAIN SELECT * FROM orders WHERE customer_id = 3 ORDER BY total, id LIMIT 2;
SELECT id, total FROM orders WHERE customer_id = 3 ORDER BY total, id LIMIT 2;
EXPLAIN SELECT * FROM orders ORDER BY customer_id, total LIMIT 4;
SELECT id, customer_id, total FROM orders ORDER BY customer_id, total LIMIT 4;
EXPLAIN SELECT * FROM orders ORDER BY customer_id;
EXPLAIN SELECT * FROM orders ORDER BY id DESC LIMIT 3;
EXPLAIN SELECT * FROM orders ORDER BY total LIMIT 3;
DROP INDEX orders_customer;

-- An index on an expression serves a WHERE clause computing the same expression.
CREATE INDEX customers_upper_name ON customers (upper(name));
EXPLAIN SELECT * FROM customers WHERE upper(name) = 'C3';
SELECT id FROM customers WHERE upper(name) = 'C3';
EXPLAIN SELECT * FROM customers WHERE lower(name) = 'c3';
DROP INDEX customers_upper_name;

-- No equality to hash on: nested loop.
EXPLAIN SELECT * FROM customers c JOIN orders o ON o.total > c.id * 10;
EXPLAIN SELECT * FROM regions CROSS JOIN regions AS r2;

-- Three tables, each step chosen on its own.
EXPLAIN SELECT c.name, sum(l.qty)
  FROM customers c
  JOIN orders o ON o.customer_id = c.id
  JOIN order_lines l ON l.order_id = o.id
  WHERE c.region = 2
  GROUP BY c.name ORDER BY 2 DESC LIMIT 3;
SELECT c.name, sum(l.qty)
  FROM customers c
  JOIN orders o ON o.customer_id = c.id
  JOIN order_lines l ON l.order_id = o.id
  WHERE c.region = 2
  GROUP BY c.name ORDER BY 2 DESC, 1 LIMIT 3;

-- Derived tables, functions and set operations.
EXPLAIN SELECT * FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) s
  JOIN customers c ON c.id = s.customer_id;
EXPLAIN SELECT * FROM generate_series(1, 3) g JOIN customers c ON c.id = g;
EXPLAIN SELECT id FROM customers UNION SELECT id FROM orders ORDER BY 1;

-- Subqueries: uncorrelated ones run once; a correlated one tied by equalities is hashed once,
-- any other runs per outer row.
EXPLAIN SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 20);
EXPLAIN SELECT name FROM customers c WHERE c.id IN (SELECT customer_id FROM orders WHERE total > 80);
EXPLAIN SELECT name, (SELECT max(total) FROM orders o WHERE o.customer_id = c.id) FROM customers c;
SELECT count(*) FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.total > 20);
