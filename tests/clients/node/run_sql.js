// Runs SQL through the npm trino-client as a Node.js application does; driven by
// tests/clients/lakehouse.py's node_sql, with NODE_PATH at the node_modules that
// scripts/node-env.sh installs.
//
// stdin:  {"server": "http://127.0.0.1:8080", "user": "admin", "password": optional,
//          "catalog": optional, "schema": optional, "insecure": optional,
//          "statements": ["SQL", ...]}
// stdout: one JSON line, per statement
//         {"columns": [names], "types": [type names], "rows": [[...]],
//          "error": null | {"errorName": ..., "message": ...}}
'use strict';

const { BasicAuth, Trino } = require('trino-client');

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

// An HTTP failure (axios rejects on 4xx/5xx and on refused connections): the Trino error
// of the body when there is one, otherwise the status or the socket's code.
function requestError(e) {
  const body = e.response && e.response.data;
  if (body && typeof body === 'object' && body.error) {
    return { errorName: body.error.errorName, message: body.error.message };
  }
  const status = e.response && e.response.status;
  return {
    errorName: status ? `HTTP_${status}` : (e.code || e.name || 'Error'),
    message: typeof body === 'string' && body ? body : String(e.message || e),
  };
}

async function run(trino, sql) {
  const result = { columns: [], types: [], rows: [], error: null };
  try {
    const pages = await trino.query(sql);
    for await (const page of pages) {
      if (page.columns && result.columns.length === 0) {
        result.columns = page.columns.map(c => c.name);
        result.types = page.columns.map(c => c.type);
      }
      if (page.data) result.rows.push(...page.data);
      if (page.error) {
        result.error = { errorName: page.error.errorName, message: page.error.message };
        break;
      }
    }
  } catch (e) {
    result.error = requestError(e);
  }
  return result;
}

async function main() {
  const request = await readStdin();
  const options = {
    server: request.server,
    auth: new BasicAuth(request.user, request.password ?? undefined),
  };
  if (request.catalog) options.catalog = request.catalog;
  if (request.schema) options.schema = request.schema;
  if (request.insecure) options.ssl = { rejectUnauthorized: false };
  // One client for all statements: USE and SET SESSION carry over as in an application.
  const trino = Trino.create(options);
  const results = [];
  for (const sql of request.statements) results.push(await run(trino, sql));
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch(e => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
