#!/usr/bin/env bash
# `aichemy sql` end to end: the README tour runs, results persist across processes,
# a failing statement exits 1 with the Trino error on stderr, and statements piped to
# stdin run one by one (past failures with --ignore-errors).
set -euo pipefail
bin="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
"$bin" sql -e "CREATE SCHEMA iceberg.ic_test;
CREATE TABLE iceberg.ic_test.orders (order_id INTEGER, customer_id INTEGER, order_date DATE, amount DECIMAL(10,2));
INSERT INTO iceberg.ic_test.orders VALUES (1, 101, DATE '2025-01-15', 99.99), (2, 102, DATE '2025-01-16', 149.50);" >/dev/null
out=$("$bin" sql --format csv -e "SELECT * FROM iceberg.ic_test.orders ORDER BY order_id")
expected='"order_id","customer_id","order_date","amount"
"1","101","2025-01-15","99.99"
"2","102","2025-01-16","149.50"'
[ "$out" = "$expected" ] || { echo "unexpected rows:"; echo "$out"; exit 1; }
printf 'SELECT count(*) AS n\nFROM iceberg.ic_test.orders;\n' > q.sql
[ "$("$bin" sql --format json -f q.sql)" = '{"n":2}' ] || { echo "-f failed"; exit 1; }
if "$bin" sql -e "SELECT * FROM iceberg.ic_test.x" 2>err.txt; then echo "expected failure"; exit 1; fi
grep -q "TABLE_NOT_FOUND: Table 'iceberg.ic_test.x' does not exist" err.txt || { cat err.txt; exit 1; }
[ -f aichemy-data/metastore.db ] || { echo "no metastore in ./aichemy-data"; exit 1; }
piped=$(printf 'SELECT 1 AS n, NULL AS m;\nSELECT nosuch;\nSELECT 2\n  AS n;\nSELECT 3 AS n' |
  "$bin" sql --format json --ignore-errors 2>err.txt) && { echo "expected exit 1"; exit 1; }
[ "$piped" = '{"n":1,"m":null}
{"n":2}
{"n":3}' ] || { echo "unexpected piped output:"; echo "$piped"; exit 1; }
grep -q "COLUMN_NOT_FOUND: Column 'nosuch' cannot be resolved" err.txt || { cat err.txt; exit 1; }
piped=$(printf 'SELECT 1 AS n;\nSELECT nosuch;\nSELECT 2 AS n;\n' | "$bin" sql --format json 2>/dev/null) &&
  { echo "expected exit 1"; exit 1; }
[ "$piped" = '{"n":1}' ] || { echo "piped run went on past a failure: $piped"; exit 1; }
echo "smoke: 4 passed, 0 failed"
