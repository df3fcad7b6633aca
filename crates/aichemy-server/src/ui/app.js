// AIchemy web console: the browser side of /ui/.
//
// One plain script, no framework and no build step. Every node is built with
// createElement / createElementNS and every text goes in through textContent (or a
// text node), so names of tables, columns and values always show as text. Every
// request goes to this origin with the session cookie and the X-AIchemy-CSRF header.
'use strict';

const MAX_ROWS = 10000;
const PAGE_SIZE = 100;
const SOURCE = 'aichemy-console';
const SVG_NS = 'http://www.w3.org/2000/svg';
const VIEWS = ['query', 'catalog', 'queries', 'jobs', 'pipelines', 'lineage', 'metrics'];
const EXPIRED = 'Your session expired, sign in again';

// What the page knows: the session, whether sign-in asks a password, the view shown
// and its refresh timer.
const app = {
  session: null,
  passwordAsked: true,
  view: null,
  timer: null,
  expiryTimer: null,
};

/* ------------------------------------------------------------------ DOM helpers */

const $ = (id) => document.getElementById(id);

// Appends children: nodes as they are, strings and numbers as text nodes; skips null.
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// An HTML element: props `class`, `text`, `on` ({event: handler}); any other prop is
// an attribute (true gives an empty attribute, null/false leaves it out).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  return append(node, children);
}

// An SVG element with its attributes.
function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = String(value);
    else if (value != null) node.setAttribute(key, String(value));
  }
  return append(node, children);
}

function loadingNode(tag = 'div') {
  return el(tag, { class: 'loading', text: 'Loading…' });
}

function showLoading(container) {
  container.replaceChildren(loadingNode(container.tagName === 'UL' ? 'li' : 'div'));
}

// The text of a query error: message, error name and where in the statement.
function errorText(error) {
  if (!error) return '';
  let text = error.message || 'Failed';
  if (error.errorName) text += ` (${error.errorName})`;
  const loc = error.errorLocation;
  if (loc && loc.lineNumber) text += ` at line ${loc.lineNumber}, column ${loc.columnNumber}`;
  return text;
}

function errorNode(error, tag = 'div') {
  return el(tag, { class: 'error', role: 'alert', text: errorText(error) });
}

/* ------------------------------------------------------------------ formatting */

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

function fmtNumber(n) {
  return numberFormat.format(n);
}

function fmtBytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return String(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = Math.abs(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${n < 0 ? '-' : ''}${value.toFixed(digits)} ${units[unit]}`;
}

function fmtDuration(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

// A value in a metric's unit.
function fmtUnit(value, unit) {
  if (value == null) return '–';
  if (unit === 'bytes') return fmtBytes(value);
  if (unit === 'seconds') return fmtDuration(value * 1000);
  if (unit === 'per_second') return `${fmtNumber(value)}/s`;
  return fmtNumber(value);
}

// A cell's value as shown in a result grid: NULL dimmed, objects as JSON.
function valueNode(value) {
  if (value == null) return el('span', { class: 'null', text: 'NULL' });
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function stateBadge(state) {
  const name = String(state).toUpperCase().replace(/[^A-Z_]/g, '');
  return el('span', { class: `state state-${name}`, text: String(state) });
}

// A cell of the system tables: states as badges, *_ms as durations, bytes as KB/MB.
function smartCell(value, column) {
  if (value == null) return undefined;
  const name = column.name;
  if (name === 'state' || name.endsWith('_state')) return stateBadge(value);
  if (name === 'query_id' || name === 'run_id') return el('span', { class: 'mono', text: value });
  if (typeof value === 'number') {
    if (name.endsWith('_ms')) return fmtDuration(value);
    if (name.includes('bytes')) return fmtBytes(value);
    return fmtNumber(value);
  }
  if ((name === 'error' || name === 'last_error') && value) {
    return el('span', { class: 'error-text', text: value });
  }
  return undefined;
}

/* ------------------------------------------------------------------ server requests */

// fetch() on this origin with the cookie and the CSRF header; a 401 while signed in
// means the session expired.
async function apiFetch(path, { method = 'GET', headers = {}, body, signal } = {}) {
  const all = { ...headers };
  if (app.session && app.session.csrf) all['X-AIchemy-CSRF'] = app.session.csrf;
  const response = await fetch(path, {
    method,
    body,
    signal,
    headers: all,
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (response.status === 401 && app.session) sessionExpired();
  return response;
}

async function readJson(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { message: text };
  }
}

function quoteIdent(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}

function quoteLiteral(text) {
  return `'${String(text).replace(/'/g, "''")}'`;
}

// The path of a URI the server gave, so that every request stays on this origin.
function localPath(uri) {
  const url = new URL(uri, location.href);
  return url.pathname + url.search;
}

function cancelStatement(uri) {
  apiFetch(uri, { method: 'DELETE' }).catch(() => {});
}

// Adds one protocol page to the result gathered so far.
function absorbPage(result, page) {
  if (page.id) result.queryId = page.id;
  if (page.columns && !result.columns) result.columns = page.columns;
  for (const row of page.data || []) {
    if (result.rows.length >= MAX_ROWS) {
      result.truncated = true;
      break;
    }
    result.rows.push(row);
  }
  if (page.stats && page.stats.state) result.state = page.stats.state;
  if (page.error) {
    result.error = page.error;
    result.state = 'FAILED';
  }
}

// Runs one statement over the Trino protocol: POST it, then GET each nextUri until
// there is none. Returns {columns, rows, error, queryId, state, truncated}; never
// throws. Aborting `signal` cancels the query (state CANCELED).
async function runSql(sql, { onProgress, signal, catalog, schema } = {}) {
  const headers = { 'X-Trino-Source': SOURCE };
  if (catalog) headers['X-Trino-Catalog'] = catalog;
  if (schema) headers['X-Trino-Schema'] = schema;
  const result = {
    columns: null, rows: [], error: null, queryId: null, state: 'QUEUED',
    truncated: false, setCatalog: null, setSchema: null,
  };
  let request = { uri: '/v1/statement', method: 'POST', body: sql };
  let nextUri = null;
  try {
    while (request) {
      const response = await apiFetch(request.uri, { ...request, headers, signal });
      if (!response.ok) {
        const text = (await response.text()).trim();
        result.error = { message: text || `HTTP ${response.status}`, errorName: `HTTP_${response.status}` };
        if (response.status === 401) result.error.message = EXPIRED;
        result.state = 'FAILED';
        break;
      }
      result.setCatalog = response.headers.get('X-Trino-Set-Catalog') ?? result.setCatalog;
      result.setSchema = response.headers.get('X-Trino-Set-Schema') ?? result.setSchema;
      const page = await response.json();
      absorbPage(result, page);
      nextUri = page.nextUri ? localPath(page.nextUri) : null;
      if (onProgress) onProgress(result);
      if (!nextUri || result.error) break;
      if (result.truncated) {
        // enough rows: stop the query; what was fetched is the (finished) result
        cancelStatement(nextUri);
        result.state = 'FINISHED';
        break;
      }
      request = { uri: nextUri, method: 'GET' };
    }
  } catch (err) {
    if (err.name === 'AbortError') {
      result.state = 'CANCELED';
      if (nextUri) cancelStatement(nextUri);
    } else {
      result.error = { message: `Request failed: ${err.message}`, errorName: 'REQUEST_ERROR' };
      result.state = 'FAILED';
    }
  }
  return result;
}

/* ------------------------------------------------------------------ tables */

// One HTML table: a th per column (name, and the type in a smaller span), a row per
// data row. `rowAttrs(row, index)` gives attributes of each <tr>; `cells(value,
// column, row, index)` may return a node or text for a cell (undefined: the default);
// `types: false` leaves the types out of the header.
function renderTable(container, columns, rows, { rowAttrs, cells, empty = 'No rows', types = true } = {}) {
  const cols = (columns || []).map((c) => (typeof c === 'string' ? { name: c } : c));
  const head = el('tr', {}, cols.map((c) => el('th', { scope: 'col' },
    c.name, types && c.type ? el('span', { class: 'col-type', text: c.type }) : null)));
  const body = el('tbody');
  if (!rows.length) {
    body.append(el('tr', { class: 'empty' }, el('td', { colspan: cols.length || 1, text: empty })));
  }
  rows.forEach((row, index) => {
    const tr = el('tr', rowAttrs ? rowAttrs(row, index) : {});
    cols.forEach((col, i) => {
      const custom = cells ? cells(row[i], col, row, i) : undefined;
      tr.append(el('td', {}, custom !== undefined ? custom : valueNode(row[i])));
    });
    body.append(tr);
  });
  const table = el('table', { class: 'grid' }, el('thead', {}, head), body);
  container.replaceChildren(el('div', { class: 'table-wrap' }, table));
  return table;
}

// Runs `sql` and renders its rows in `container` (its error instead when it fails).
async function loadTable(container, sql, options = {}) {
  if (!container.querySelector('table')) showLoading(container);
  const result = await runSql(sql);
  if (result.error) container.replaceChildren(errorNode(result.error));
  else renderTable(container, result.columns, result.rows, { cells: smartCell, types: false, ...options });
  return result;
}

/* ------------------------------------------------------------------ sign-in and session */

// The sign-in form alone, with `message` in #login-error.
function showLogin(message = '') {
  app.session = null;
  stopTimer();
  clearTimeout(app.expiryTimer);
  abortRunning();
  $('app').hidden = true;
  $('boot').hidden = true;
  $('login').hidden = false;
  $('login-password-row').hidden = !app.passwordAsked;
  $('login-password').hidden = !app.passwordAsked;
  $('login-password').required = app.passwordAsked;
  $('login-error').textContent = message;
  $('login-user').focus();
}

// The console for a signed-in session.
function startApp(session) {
  const sameUser = app.lastUser === session.user;
  app.session = session;
  app.lastUser = session.user;
  if (!sameUser) resetViews();
  $('login').hidden = true;
  $('boot').hidden = true;
  $('app').hidden = false;
  $('whoami').textContent = session.user;
  $('version').textContent = session.version || '';
  scheduleExpiryCheck();
  route();
}

// Asks the server who is signed in; shows the console or the sign-in form.
async function checkSession(messageIfOut = '') {
  try {
    const response = await apiFetch('/ui/api/session');
    const body = await readJson(response);
    if (response.ok) return startApp(body);
    app.passwordAsked = body.password !== false;
    if (!app.session) showLogin(messageIfOut);
  } catch (err) {
    showLogin(`Cannot reach the server: ${err.message}`);
  }
  return undefined;
}

// Looks again when the session's expiry has passed.
function scheduleExpiryCheck() {
  clearTimeout(app.expiryTimer);
  const expires = Number(app.session && app.session.expires);
  if (!expires) return;
  const wait = Math.min(Math.max(expires - Date.now() + 1000, 1000), 2 ** 31 - 1);
  app.expiryTimer = setTimeout(() => checkSession(EXPIRED), wait);
}

function sessionExpired() {
  if (!app.session) return;
  showLogin(EXPIRED);
  checkSession(EXPIRED); // learns whether the server asks a password
}

async function submitLogin(event) {
  event.preventDefault();
  const body = { user: $('login-user').value.trim() };
  if (app.passwordAsked) body.password = $('login-password').value;
  $('login-submit').disabled = true;
  $('login-error').textContent = '';
  try {
    const response = await apiFetch('/ui/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await readJson(response);
    if (response.ok) {
      $('login-password').value = '';
      startApp(data);
    } else {
      $('login-error').textContent = data.message || `Sign-in failed (HTTP ${response.status})`;
    }
  } catch (err) {
    $('login-error').textContent = `Cannot reach the server: ${err.message}`;
  } finally {
    $('login-submit').disabled = false;
  }
}

async function logout() {
  try {
    await apiFetch('/ui/api/logout', { method: 'POST' });
  } catch {
    // signed out locally all the same
  }
  showLogin('');
}

/* ------------------------------------------------------------------ routing */

function stopTimer() {
  clearInterval(app.timer);
  app.timer = null;
}

// Calls `fn` every `ms` while the view stays shown and the tab is visible.
function every(ms, fn) {
  stopTimer();
  app.timer = setInterval(() => {
    if (!document.hidden && app.session) fn();
  }, ms);
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// Shows the view the hash names (#view or #view/argument).
function route() {
  if (!app.session) return;
  const [name, ...rest] = location.hash.replace(/^#/, '').split('/');
  const view = VIEWS.includes(name) ? name : 'query';
  const arg = rest.length ? safeDecode(rest.join('/')) : '';
  stopTimer();
  app.view = view;
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const link of document.querySelectorAll('a[data-view]')) {
    const current = link.dataset.view === view;
    link.classList.toggle('active', current);
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  VIEW_ENTER[view](arg);
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/* ------------------------------------------------------------------ query view: editor */

// Query view: a highlighted SQL editor, run/cancel, status, errors and paged results.
const editor = { running: null, result: null, page: 0, elapsed: 0, errorLine: 0 };

const KEYWORDS = new Set(`
  ADD ADMIN AFTER ALL ALTER ANALYZE AND ANY ARRAY AS ASC AT AUTHORIZATION BERNOULLI BETWEEN
  BIGINT BOOLEAN BOTH BY CALL CASCADE CASE CAST CATALOG CATALOGS CHAR COLUMN COLUMNS COMMENT
  COMMIT COMMITTED CONSTRAINT COPARTITION CREATE CROSS CUBE CURRENT CURRENT_CATALOG
  CURRENT_DATE CURRENT_PATH CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP
  CURRENT_USER DATA DATE DAY DEALLOCATE DECIMAL DEFAULT DEFINER DELETE DENY DESC DESCRIBE
  DISTINCT DOUBLE DROP ELSE EMPTY END ESCAPE EXCEPT EXCLUDING EXECUTE EXISTS EXPLAIN EXTRACT
  FALSE FETCH FILTER FIRST FOLLOWING FOR FORMAT FROM FULL FUNCTION FUNCTIONS GRANT GRANTED
  GRANTS GRAPHVIZ GROUP GROUPING GROUPS HAVING HOUR IF IGNORE IN INCLUDING INNER INPUT INSERT
  INT INTEGER INTERSECT INTERVAL INTO INVOKER IO IS ISOLATION JOIN JSON LAST LATERAL LEADING
  LEFT LEVEL LIKE LIMIT LISTAGG LOCAL LOCALTIME LOCALTIMESTAMP LOGICAL MAP MATCH MATCHED
  MATERIALIZED MERGE MINUTE MONTH NATURAL NEXT NFC NFD NFKC NFKD NO NONE NORMALIZE NOT NULL
  NULLIF NULLS OF OFFSET ON ONLY OPTION OR ORDER ORDINALITY OUTER OUTPUT OVER OVERFLOW
  PARTITION PARTITIONS PATH PRECEDING PREPARE PRIVILEGES PROPERTIES RANGE READ REAL RECURSIVE
  REFRESH RENAME REPEATABLE REPLACE RESET RESPECT RESTRICT RETURN RETURNS REVOKE RIGHT ROLE
  ROLES ROLLBACK ROLLUP ROW ROWS SCHEMA SCHEMAS SECOND SECURITY SELECT SERIALIZABLE SESSION
  SET SETS SHOW SMALLINT SOME START STATS SYSTEM TABLE TABLES TABLESAMPLE TEXT THEN TIES TIME
  TIMESTAMP TINYINT TO TRAILING TRANSACTION TRUE TRUNCATE TRY_CAST TYPE UESCAPE UNBOUNDED
  UNCOMMITTED UNION UNKNOWN UNNEST UPDATE USE USER USING UUID VALIDATE VALUES VARBINARY
  VARCHAR VERBOSE VERSION VIEW VIEWS WHEN WHERE WINDOW WITH WITHIN WITHOUT WORK WRITE YEAR
  ZONE`.trim().split(/\s+/));

// Comments, strings, quoted identifiers, numbers, words, operators, blanks, anything else.
const TOKEN_RE = /--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|'(?:[^']|'')*'?|"(?:[^"]|"")*"?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|<>|<=|>=|!=|\|\||=>|->|[-+*/%=<>(),;.[\]:|^?]|\s+|[\s\S]/g;

function tokenClass(token) {
  const c = token[0];
  if (token.startsWith('--') || token.startsWith('/*')) return 'com';
  if (c === "'") return 'str';
  if (c === '"') return 'ident';
  if (/[0-9]/.test(c) || (c === '.' && token.length > 1)) return 'num';
  if (/[A-Za-z_]/.test(c)) return KEYWORDS.has(token.toUpperCase()) ? 'kw' : null;
  if (/\s/.test(c)) return null;
  return 'op';
}

// Rebuilds the highlighted copy of the statement behind the textarea, line by line
// (the line of the last error marked).
function highlightSql() {
  const text = $('sql').value;
  const frag = document.createDocumentFragment();
  let lineNo = 1;
  const newLine = (n) => el('span', { class: n === editor.errorLine ? 'line err-line' : 'line' });
  let line = newLine(lineNo);
  for (const token of text.match(TOKEN_RE) || []) {
    const cls = tokenClass(token);
    token.split('\n').forEach((part, i) => {
      if (i > 0) {
        frag.append(line, '\n');
        lineNo += 1;
        line = newLine(lineNo);
      }
      if (part) line.append(cls ? el('span', { class: cls, text: part }) : document.createTextNode(part));
    });
  }
  frag.append(line, '\n\n ');
  $('sql-highlight').replaceChildren(frag);
  syncScroll();
}

function syncScroll() {
  const pre = $('sql-highlight');
  pre.scrollTop = $('sql').scrollTop;
  pre.scrollLeft = $('sql').scrollLeft;
}

// Puts the caret at line/column (1-based) of the statement and marks that line.
function placeCaret(line, column) {
  const area = $('sql');
  const lines = area.value.split('\n');
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i += 1) offset += lines[i].length + 1;
  offset = Math.min(offset + Math.max(column - 1, 0), area.value.length);
  editor.errorLine = line;
  highlightSql();
  area.focus();
  area.setSelectionRange(offset, offset);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
  const top = (line - 1) * lineHeight;
  if (top < area.scrollTop || top > area.scrollTop + area.clientHeight - lineHeight * 2) {
    area.scrollTop = Math.max(0, top - lineHeight * 2);
  }
  syncScroll();
}

// Sets the editor's text (from other views) and shows the query view.
function openInEditor(sql) {
  $('sql').value = sql;
  editor.errorLine = 0;
  highlightSql();
  go('#query');
  $('sql').focus();
}

/* ------------------------------------------------------------------ query view: running */

function showQueryState(result) {
  const parts = [stateBadge(result.state)];
  if (result.queryId) {
    parts.push(el('a', { class: 'mono', href: `#queries/${encodeURIComponent(result.queryId)}`, text: result.queryId }));
  }
  parts.push(`${fmtNumber(result.rows.length)} rows`);
  parts.push(fmtDuration(editor.running ? performance.now() - editor.startedAt : editor.elapsed));
  if (result.truncated) parts.push(el('strong', { text: 'first 10,000 rows shown' }));
  const status = $('query-state');
  status.replaceChildren();
  parts.forEach((part, i) => append(status, [i ? el('span', { class: 'sep', text: ' · ' }) : null, part]));
}

function showSqlError(error) {
  const box = $('query-error');
  if (!error) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(el('span', { class: 'error-message', text: error.message || 'Query failed' }));
  if (error.errorName) box.append(' ', el('span', { class: 'error-name', text: error.errorName }));
  const loc = error.errorLocation;
  if (loc && loc.lineNumber) {
    box.append(' ', el('span', { class: 'error-loc', text: `at line ${loc.lineNumber}, column ${loc.columnNumber}` }));
    placeCaret(loc.lineNumber, loc.columnNumber || 1);
  }
}

async function runQuery() {
  if (editor.running) return;
  const sql = $('sql').value.replace(/[\s;]+$/, '');
  if (!sql.trim()) {
    showSqlError({ message: 'Type a statement first' });
    return;
  }
  const controller = new AbortController();
  editor.running = controller;
  editor.startedAt = performance.now();
  editor.result = null;
  editor.errorLine = 0;
  highlightSql();
  showSqlError(null);
  $('run').disabled = true;
  $('cancel').disabled = false;
  $('results-bar').hidden = true;
  showLoading($('results-body'));
  let progress = { state: 'QUEUED', queryId: null, rows: [] };
  showQueryState(progress);
  const tick = setInterval(() => showQueryState(progress), 250);
  const result = await runSql(sql, {
    signal: controller.signal,
    catalog: $('session-catalog').value.trim(),
    schema: $('session-schema').value.trim(),
    onProgress: (r) => {
      progress = r;
      showQueryState(r);
    },
  });
  clearInterval(tick);
  editor.elapsed = performance.now() - editor.startedAt;
  editor.running = null;
  $('run').disabled = false;
  $('cancel').disabled = true;
  if (result.setCatalog) $('session-catalog').value = result.setCatalog;
  if (result.setSchema) $('session-schema').value = result.setSchema;
  editor.result = result;
  editor.page = 0;
  showQueryState(result);
  if (result.error) showSqlError(result.error);
  renderResults();
}

function abortRunning() {
  if (editor.running) editor.running.abort();
}

// The current page of the gathered rows, with the pager.
function renderResults() {
  const result = editor.result;
  const body = $('results-body');
  if (!result || !result.columns) {
    $('results-bar').hidden = true;
    let note = null;
    if (result && result.state === 'CANCELED') note = 'Query canceled.';
    else if (result && !result.error) note = 'The statement returned no rows.';
    body.replaceChildren(note ? el('p', { class: 'dim', text: note }) : '');
    return;
  }
  const total = result.rows.length;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  editor.page = Math.min(Math.max(editor.page, 0), pages - 1);
  const start = editor.page * PAGE_SIZE;
  const slice = result.rows.slice(start, start + PAGE_SIZE);
  renderTable(body, result.columns, slice);
  $('page-info').textContent = total
    ? `rows ${fmtNumber(start + 1)}–${fmtNumber(start + slice.length)} of ${fmtNumber(total)}`
    : 'no rows';
  $('page-prev').disabled = editor.page === 0;
  $('page-next').disabled = editor.page >= pages - 1;
  $('results-bar').hidden = false;
}

/* ------------------------------------------------------------------ query view: CSV */

// One CSV field (RFC 4180): quoted when needed, formula-looking text defused with '.
function csvField(value) {
  if (value == null) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  const plainNumber = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text);
  if (/^[=+\-@]/.test(text) && !plainNumber) text = `'${text}`;
  if (/[",\r\n]/.test(text)) text = `"${text.replace(/"/g, '""')}"`;
  return text;
}

function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvField(c.name)).join(',')];
  for (const row of rows) lines.push(row.map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function downloadCsv() {
  const result = editor.result;
  if (!result || !result.columns) return;
  const blob = new Blob([toCsv(result.columns, result.rows)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const name = `query-${(result.queryId || 'result').replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`;
  const link = el('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function initQueryView() {
  const area = $('sql');
  area.addEventListener('input', () => {
    editor.errorLine = 0;
    highlightSql();
  });
  area.addEventListener('scroll', syncScroll);
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runQuery();
    }
  });
  $('run').addEventListener('click', runQuery);
  $('cancel').addEventListener('click', abortRunning);
  $('page-prev').addEventListener('click', () => { editor.page -= 1; renderResults(); });
  $('page-next').addEventListener('click', () => { editor.page += 1; renderResults(); });
  $('download-csv').addEventListener('click', downloadCsv);
  highlightSql();
}

function enterQuery() {
  highlightSql();
}

/* ------------------------------------------------------------------ catalog view */

// Catalog view: a lazily loaded tree of catalogs, schemas and tables, and the picked
// table's columns, definition, snapshots and sample rows.
const catalogState = { loaded: false, token: 0 };

function enterCatalog() {
  if (!catalogState.loaded) loadCatalogs();
}

async function loadCatalogs() {
  catalogState.loaded = true;
  const tree = $('catalog-tree');
  $('catalog-error').replaceChildren();
  showLoading(tree);
  const result = await runSql('SHOW CATALOGS');
  if (result.error) {
    catalogState.loaded = false;
    tree.replaceChildren();
    $('catalog-error').textContent = errorText(result.error);
    return;
  }
  tree.replaceChildren(el('ul', { class: 'tree-list' },
    result.rows.map((row) => treeBranch('tree-catalog', row[0], (list) => loadSchemas(list, row[0])))));
}

// A tree item that loads its children the first time it opens; `load` returns
// false when it failed (it then loads again on the next opening).
function treeBranch(kind, label, load) {
  const children = el('ul', { class: 'tree-list', hidden: true });
  const button = el('button', { type: 'button', class: `tree-item ${kind}`, 'aria-expanded': 'false', text: label });
  let loaded = false;
  button.addEventListener('click', async () => {
    const open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    children.hidden = !open;
    if (open && !loaded) {
      loaded = true;
      showLoading(children);
      loaded = await load(children);
    }
  });
  return el('li', {}, button, children);
}

async function fillBranch(list, sql, makeItem) {
  const result = await runSql(sql);
  if (result.error) {
    list.replaceChildren(errorNode(result.error, 'li'));
    return false;
  }
  const items = result.rows.map(makeItem);
  list.replaceChildren(...(items.length ? items : [el('li', { class: 'dim', text: '(empty)' })]));
  return true;
}

function loadSchemas(list, cat) {
  return fillBranch(list, `SHOW SCHEMAS FROM ${quoteIdent(cat)}`,
    (row) => treeBranch('tree-schema', row[0], (sub) => loadTables(sub, cat, row[0])));
}

function loadTables(list, cat, schema) {
  const sql = `SELECT table_name, table_type FROM ${quoteIdent(cat)}.information_schema.tables `
    + `WHERE table_schema = ${quoteLiteral(schema)} ORDER BY table_name`;
  return fillBranch(list, sql, ([table, type]) => el('li', {}, el('button', {
    type: 'button',
    class: `tree-item tree-table${type === 'VIEW' ? ' is-view' : ''}`,
    title: type || null,
    text: table,
    on: { click: (event) => selectTable(event.currentTarget, cat, schema, table) },
  })));
}

function selectTable(button, cat, schema, table) {
  for (const b of $('catalog-tree').querySelectorAll('.tree-table.selected')) b.classList.remove('selected');
  button.classList.add('selected');
  showTable(cat, schema, table);
}

// Fills #table-detail; each part loads on its own and shows its own error.
function showTable(cat, schema, table) {
  const token = ++catalogState.token;
  const current = () => token === catalogState.token;
  const full = `${cat}.${schema}.${table}`;
  const name = `${quoteIdent(cat)}.${quoteIdent(schema)}.${quoteIdent(table)}`;
  const columns = el('div', { id: 'table-columns' }, loadingNode());
  const ddl = el('pre', { id: 'table-ddl', class: 'sql-block' }, loadingNode('span'));
  const snapshots = el('div', { id: 'table-snapshots' }, loadingNode());
  const sample = el('div', { id: 'table-sample' }, loadingNode());
  $('table-detail').replaceChildren(
    el('div', { class: 'detail-head' },
      el('h2', { id: 'table-title', class: 'mono', text: full }),
      el('a', { class: 'button', href: `#lineage/${encodeURIComponent(full)}`, text: 'Lineage' }),
      el('button', { type: 'button', text: 'Query', on: { click: () => openInEditor(`SELECT * FROM ${name} LIMIT 100`) } })),
    el('h3', { text: 'Columns' }), columns,
    el('h3', { text: 'Definition' }), ddl,
    el('h3', { text: 'Snapshots' }), snapshots,
    el('h3', { text: 'Sample rows' }), sample);

  runSql(`SHOW COLUMNS FROM ${name}`).then((r) => {
    if (!current()) return;
    if (r.error) columns.replaceChildren(errorNode(r.error));
    else renderTable(columns, ['Column', 'Type', 'Extra', 'Comment'], r.rows, { empty: 'No columns' });
  });
  runSql(`SHOW CREATE TABLE ${name}`).then((r) => {
    if (!current()) return;
    if (r.error) ddl.replaceChildren(errorNode(r.error, 'span'));
    else ddl.textContent = r.rows.length ? String(r.rows[0][0]) : '';
  });
  const history = `${quoteIdent(cat)}.${quoteIdent(schema)}.${quoteIdent(`${table}$snapshots`)}`;
  runSql(`SELECT * FROM ${history} ORDER BY committed_at DESC LIMIT 20`).then((r) => {
    if (!current()) return;
    if (r.error) {
      snapshots.replaceChildren(el('p', { class: 'note', text: 'No snapshot history for this table' }),
        el('p', { class: 'dim', text: errorText(r.error) }));
    } else renderTable(snapshots, r.columns, r.rows, { empty: 'No snapshots' });
  });
  runSql(`SELECT * FROM ${name} LIMIT 20`).then((r) => {
    if (!current()) return;
    if (r.error) sample.replaceChildren(errorNode(r.error));
    else renderTable(sample, r.columns, r.rows, { empty: 'The table is empty' });
  });
}

/* ------------------------------------------------------------------ queries view */

// Queries view: the list of system.runtime.queries (refreshed every 5 s, filtered on
// the client, with Kill buttons) and, at #queries/<id>, one query in detail.
const QUERIES_SQL = 'SELECT query_id, state, "user", source, query, created, elapsed_time_ms, '
  + 'queued_time_ms, cpu_time_ms, peak_memory_bytes, rows_read, bytes_read, rows '
  + 'FROM system.runtime.queries ORDER BY created DESC LIMIT 200';
const queriesState = { columns: null, rows: [], shown: '', loading: false };

const isActive = (state) => state === 'RUNNING' || state === 'QUEUED';

function enterQueries(id) {
  $('queries-error').replaceChildren();
  $('queries-notice').textContent = '';
  $('queries-list').hidden = Boolean(id);
  $('queries-tools').hidden = Boolean(id);
  $('query-detail').hidden = !id;
  if (id) {
    loadQueryDetail(id);
  } else {
    loadQueries();
    every(5000, loadQueries);
  }
}

async function loadQueries() {
  if (queriesState.loading) return;
  queriesState.loading = true;
  const box = $('queries-table');
  if (!queriesState.columns) showLoading(box);
  const result = await runSql(QUERIES_SQL);
  queriesState.loading = false;
  if (result.error) {
    queriesState.columns = null;
    queriesState.shown = '';
    box.replaceChildren(errorNode(result.error));
    return;
  }
  queriesState.columns = result.columns;
  queriesState.rows = result.rows;
  renderQueries();
}

// Renders the list through the filter; skipped when nothing changed, so that rows
// under the pointer stay the same elements.
function renderQueries(force = false) {
  const { columns, rows } = queriesState;
  if (!columns) return;
  const at = (name) => columns.findIndex((c) => c.name === name);
  const [idI, stateI, userI, queryI] = ['query_id', 'state', 'user', 'query'].map(at);
  const filter = $('queries-filter').value.trim().toLowerCase();
  const shownRows = rows.filter((row) => !filter
    || [row[userI], row[queryI], row[stateI], row[idI]].some((v) => String(v ?? '').toLowerCase().includes(filter)));
  const signature = JSON.stringify([filter, shownRows]);
  if (!force && signature === queriesState.shown) return;
  queriesState.shown = signature;
  renderTable($('queries-table'), [...columns, { name: '' }], shownRows.map((row) => [...row, null]), {
    empty: filter ? 'No query matches the filter' : 'No queries',
    types: false,
    rowAttrs: (row) => ({ 'data-query-id': row[idI], class: 'clickable' }),
    cells: (value, column, row, i) => {
      if (i === columns.length) {
        return isActive(row[stateI]) ? el('button', { type: 'button', class: 'kill', text: 'Kill' }) : '';
      }
      if (i === queryI && value != null) {
        const text = String(value).replace(/\s+/g, ' ');
        return el('span', { class: 'mono query-text', title: String(value), text: text.length > 120 ? `${text.slice(0, 120)}…` : text });
      }
      return smartCell(value, column);
    },
  });
}

function onQueriesClick(event) {
  const row = event.target.closest('tr[data-query-id]');
  if (!row) return;
  if (event.target.closest('button.kill')) {
    killQuery(row.dataset.queryId, loadQueries);
    return;
  }
  go(`#queries/${encodeURIComponent(row.dataset.queryId)}`);
}

// Kills a query through SQL; an error (Access Denied) shows in the view's .error.
async function killQuery(id, after) {
  const errorBox = $('queries-error');
  const notice = $('queries-notice');
  errorBox.replaceChildren();
  notice.textContent = `Killing ${id}…`;
  const result = await runSql(`CALL system.runtime.kill_query(query_id => ${quoteLiteral(id)}, `
    + `message => ${quoteLiteral('Killed from the console')})`);
  if (result.error) {
    notice.textContent = '';
    errorBox.textContent = errorText(result.error);
  } else {
    notice.textContent = `Query ${id} killed`;
  }
  if (after) after();
}

// A value of the detail list: durations, sizes, lists of tables and columns.
function detailValue(name, value) {
  if (value == null) return valueNode(value);
  if ((name === 'tables_read' || name === 'columns_read') && typeof value === 'string') {
    const items = value.split(',').map((s) => s.trim()).filter(Boolean);
    return items.length ? el('ul', { class: 'chips' }, items.map((t) => el('li', { class: 'mono', text: t }))) : '–';
  }
  if (typeof value === 'number' && name.endsWith('_ms')) return `${fmtDuration(value)} (${fmtNumber(value)} ms)`;
  if (typeof value === 'number' && name.includes('bytes')) return `${fmtBytes(value)} (${fmtNumber(value)} B)`;
  const smart = smartCell(value, { name });
  return smart !== undefined ? smart : valueNode(value);
}

// The reads per table from the JSON text of table_reads, or null.
function tableReads(text) {
  if (!text) return null;
  try {
    const reads = typeof text === 'string' ? JSON.parse(text) : text;
    return Array.isArray(reads) && reads.length ? reads : null;
  } catch {
    return null;
  }
}

async function loadQueryDetail(id) {
  const box = $('query-detail');
  const back = el('a', { href: '#queries', class: 'back', text: '← Back' });
  box.replaceChildren(back, loadingNode());
  const result = await runSql(`SELECT * FROM system.runtime.queries WHERE query_id = ${quoteLiteral(id)}`);
  if (result.error) {
    box.replaceChildren(back, errorNode(result.error));
    return;
  }
  if (!result.rows.length) {
    box.replaceChildren(back, el('p', { class: 'dim', text: `Query ${id} is not known (any more).` }));
    return;
  }
  const record = {};
  result.columns.forEach((c, i) => { record[c.name] = result.rows[0][i]; });
  const head = el('div', { class: 'detail-head' },
    el('h2', { class: 'mono', text: id }), record.state ? stateBadge(record.state) : null);
  if (isActive(record.state)) {
    head.append(el('button', {
      type: 'button', id: 'query-kill', class: 'danger', text: 'Kill',
      on: { click: () => killQuery(id, () => loadQueryDetail(id)) },
    }));
  }
  const parts = [back, head];
  const failure = ['error', 'error_message', 'error_type', 'error_code']
    .filter((k) => record[k] != null && record[k] !== '').map((k) => `${k}: ${record[k]}`);
  if (failure.length) parts.push(el('div', { class: 'failure', text: failure.join(' · ') }));
  parts.push(el('h3', { text: 'Statement' }), el('pre', { class: 'sql-block', text: record.query ?? '' }));
  const reads = tableReads(record.table_reads);
  if (reads) {
    parts.push(el('h3', { text: 'Reads per table' }));
    const holder = el('div', { id: 'query-table-reads' });
    renderTable(holder, ['table', 'rows', 'bytes'],
      reads.map((r) => [r.table, r.rows ?? null, r.bytes ?? null]),
      { cells: (v, col) => (col.name === 'bytes' && typeof v === 'number' ? fmtBytes(v) : smartCell(v, col)) });
    parts.push(holder);
  }
  parts.push(el('h3', { text: 'Details' }), el('dl', { class: 'props' },
    result.columns.filter((c) => c.name !== 'query' && c.name !== 'table_reads').map((c) => [
      el('dt', { text: c.name }), el('dd', {}, detailValue(c.name, record[c.name]))])));
  box.replaceChildren(...parts);
}

/* ------------------------------------------------------------------ ingestion view */

// Ingestion view: system.runtime.ingestions, lag above 1000 highlighted.
const INGESTIONS_SQL = 'SELECT ingestion_name, connector, source, target, state, desired_state, node, '
  + 'lag, rows_ingested, commits, dead_letters, last_commit, last_error, owner '
  + 'FROM system.runtime.ingestions ORDER BY ingestion_name';

function ingestionCell(value, column) {
  if (column.name === 'lag' && typeof value === 'number') {
    return el('span', { class: value > 1000 ? 'lagging' : null, text: fmtNumber(value) });
  }
  if (column.name === 'desired_state' && value != null) return String(value);
  return smartCell(value, column);
}

function enterJobs() {
  loadTable($('ingestions-table'), INGESTIONS_SQL, { cells: ingestionCell, empty: 'No ingestions' });
}

/* ------------------------------------------------------------------ pipelines view */

// Pipelines view: pipelines, their recent runs and data-quality checks.
const PIPELINE_SQL = {
  'pipelines-table': 'SELECT pipeline_name, state, schedule, steps, next_run, last_run_state, '
    + 'last_run_end, owner FROM system.runtime.pipelines ORDER BY pipeline_name',
  'pipeline-runs-table': 'SELECT pipeline_name, run_id, trigger, state, queued, started, ended, '
    + 'elapsed_ms, error FROM system.runtime.pipeline_runs ORDER BY queued DESC LIMIT 100',
  'pipeline-checks-table': 'SELECT pipeline_name, run_id, check_name, table_name, state, failing_rows, '
    + 'message, checked FROM system.runtime.pipeline_checks ORDER BY checked DESC LIMIT 100',
};

function enterPipelines() {
  for (const [id, sql] of Object.entries(PIPELINE_SQL)) loadTable($(id), sql);
}

/* ------------------------------------------------------------------ lineage view */

// Lineage view: a table's upstream and downstream tables (4 levels each way) drawn as
// columns of boxes in an SVG; clicking a box re-centers on it.
const LINEAGE_SQL = 'SELECT DISTINCT source_catalog, source_schema, source_table, target_catalog, '
  + 'target_schema, target_table FROM system.runtime.lineage '
  + 'WHERE source_table IS NOT NULL AND target_table IS NOT NULL';
const lineageState = { edges: null, loading: null };

function loadLineageEdges() {
  if (!lineageState.loading) {
    lineageState.loading = runSql(LINEAGE_SQL).then((result) => {
      if (result.error) {
        lineageState.loading = null;
        return result.error;
      }
      lineageState.edges = result.rows
        .map((r) => [r.slice(0, 3).join('.'), r.slice(3, 6).join('.')])
        .filter(([s, t]) => s !== t);
      fillLineageSelect();
      return null;
    });
  }
  return lineageState.loading;
}

function fillLineageSelect() {
  const names = [...new Set(lineageState.edges.flat())].sort();
  $('lineage-table').replaceChildren(el('option', { value: '', text: names.length ? 'Choose a table…' : 'No lineage recorded' }),
    ...names.map((n) => el('option', { value: n, text: n })));
}

async function enterLineage(focus) {
  const graph = $('lineage-graph');
  $('lineage-error').replaceChildren();
  if (!lineageState.edges) {
    showLoading(graph);
    const error = await loadLineageEdges();
    if (error) {
      graph.replaceChildren();
      $('lineage-error').textContent = errorText(error);
      return;
    }
  }
  const select = $('lineage-table');
  const name = focus || select.value;
  select.value = [...select.options].some((o) => o.value === name) ? name : '';
  if (!lineageState.edges.length) {
    graph.replaceChildren(el('p', { class: 'dim', text: 'No lineage has been recorded yet.' }));
  } else if (!name) {
    graph.replaceChildren(el('p', { class: 'dim', text: 'Pick a table to see where its data comes from and goes to.' }));
  } else {
    drawLineage(graph, name);
  }
}

// Depth of each table reached from `focus`: negative upstream, positive downstream.
function lineageDepths(focus, edges) {
  const down = new Map();
  const up = new Map();
  for (const [s, t] of edges) {
    if (!down.has(s)) down.set(s, []);
    if (!up.has(t)) up.set(t, []);
    down.get(s).push(t);
    up.get(t).push(s);
  }
  const depth = new Map([[focus, 0]]);
  for (const [adjacent, sign] of [[up, -1], [down, 1]]) {
    let frontier = [focus];
    for (let level = 1; level <= 4 && frontier.length; level += 1) {
      const next = [];
      for (const node of frontier) {
        for (const other of adjacent.get(node) || []) {
          if (!depth.has(other)) {
            depth.set(other, sign * level);
            next.push(other);
          }
        }
      }
      frontier = next;
    }
  }
  return depth;
}

function drawLineage(graph, focus) {
  const edges = lineageState.edges;
  const depth = lineageDepths(focus, edges);
  if (depth.size === 1) {
    graph.replaceChildren(el('p', { class: 'dim', text: `No lineage recorded for ${focus}.` }));
    return;
  }
  const BOX_H = 30; const GAP_X = 70; const GAP_Y = 14; const PAD = 16;
  const levels = [...new Set(depth.values())].sort((a, b) => a - b);
  const byLevel = new Map(levels.map((l) => [l, [...depth].filter(([, d]) => d === l).map(([n]) => n).sort()]));
  const tallest = Math.max(...[...byLevel.values()].map((c) => c.length));
  const height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y;
  const pos = new Map(); // name → {x, y, w}
  let x = PAD;
  for (const names of byLevel.values()) {
    const w = Math.max(120, Math.ceil(Math.max(...names.map((n) => n.length)) * 7.3) + 24);
    const offset = ((tallest - names.length) * (BOX_H + GAP_Y)) / 2;
    names.forEach((n, i) => pos.set(n, { x, y: PAD + offset + i * (BOX_H + GAP_Y), w }));
    x += w + GAP_X;
  }
  const width = x - GAP_X + PAD;
  const svg = svgEl('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Lineage of ${focus}` });
  svg.append(svgEl('defs', {}, svgEl('marker', {
    id: 'lineage-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto',
  }, svgEl('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }))));
  const seen = new Set();
  for (const [s, t] of edges) {
    const a = pos.get(s);
    const b = pos.get(t);
    if (!a || !b || seen.has(`${s}\n${t}`)) continue;
    seen.add(`${s}\n${t}`);
    const x1 = a.x + a.w; const y1 = a.y + BOX_H / 2; const x2 = b.x; const y2 = b.y + BOX_H / 2;
    const bend = Math.max(40, Math.abs(x2 - x1) / 2);
    svg.append(svgEl('path', {
      class: 'edge', d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, 'marker-end': 'url(#lineage-arrow)',
    }));
  }
  for (const [name, { x: left, y: top, w }] of pos) {
    const node = svgEl('g', { class: name === focus ? 'node focus' : 'node', transform: `translate(${left},${top})`, tabindex: 0 },
      svgEl('rect', { width: w, height: BOX_H, rx: 4 }),
      svgEl('text', { x: 12, y: BOX_H / 2, 'dominant-baseline': 'central', text: name }));
    node.addEventListener('click', () => go(`#lineage/${encodeURIComponent(name)}`));
    node.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(`#lineage/${encodeURIComponent(name)}`); });
    svg.append(node);
  }
  graph.replaceChildren(svg);
}

/* ------------------------------------------------------------------ metrics view */

// Metrics view: one small line chart per series of /ui/api/metrics, every 15 s.
async function loadMetrics() {
  const charts = $('charts');
  const errorBox = $('metrics-error');
  if (!charts.children.length) showLoading(charts);
  let response;
  try {
    response = await apiFetch('/ui/api/metrics');
  } catch (err) {
    errorBox.textContent = `Cannot reach the server: ${err.message}`;
    return;
  }
  const body = await readJson(response);
  if (!response.ok) {
    charts.replaceChildren();
    errorBox.textContent = body.message || `HTTP ${response.status}`;
    return;
  }
  errorBox.replaceChildren();
  const series = body.series || [];
  charts.replaceChildren(...(series.length ? series.map(chartFigure) : [el('p', { class: 'dim', text: 'No metrics.' })]));
}

function chartFigure(series) {
  const points = (series.points || []).filter((p) => Array.isArray(p) && isFinite(p[0]) && isFinite(p[1]));
  const latest = points.length ? points[points.length - 1][1] : null;
  const caption = el('figcaption', {}, el('span', { class: 'chart-title', text: series.title || series.name }), ' ',
    el('span', { class: 'chart-value', text: fmtUnit(latest, series.unit) }));
  return el('figure', { class: 'chart', 'data-series': series.name }, caption, chartSvg(points, series.unit));
}

function chartSvg(points, unit) {
  const W = 300; const H = 120; const L = 56; const R = 8; const T = 10; const B = 20;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  const end = points.length ? points[points.length - 1][0] : Date.now();
  const start = end - 3600 * 1000;
  const values = points.map((p) => p[1]);
  const lo = Math.min(0, ...values);
  let hi = Math.max(...values, lo);
  if (hi === lo) hi = lo + 1;
  const x = (t) => L + Math.max(0, Math.min(1, (t - start) / (end - start))) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  svg.append(svgEl('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  if (points.length) {
    const coords = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    const first = x(points[0][0]).toFixed(1);
    const last = x(end).toFixed(1);
    svg.append(svgEl('polygon', { class: 'area', points: `${first},${H - B} ${coords.join(' ')} ${last},${H - B}` }));
    svg.append(svgEl('polyline', { class: 'line', points: coords.join(' ') }));
  } else {
    svg.append(svgEl('text', { class: 'label', x: (W + L) / 2, y: H / 2, 'text-anchor': 'middle', text: 'no data' }));
  }
  svg.append(svgEl('text', { class: 'label', x: L - 4, y: T + 8, 'text-anchor': 'end', text: fmtUnit(hi, unit) }));
  svg.append(svgEl('text', { class: 'label', x: L - 4, y: H - B, 'text-anchor': 'end', text: fmtUnit(lo, unit) }));
  svg.append(svgEl('text', { class: 'label', x: L, y: H - 5, text: '-60 min' }));
  svg.append(svgEl('text', { class: 'label', x: W - R, y: H - 5, 'text-anchor': 'end', text: 'now' }));
  return svg;
}

function enterMetrics() {
  loadMetrics();
  every(15000, loadMetrics);
}

/* ------------------------------------------------------------------ start */

const VIEW_ENTER = {
  query: enterQuery,
  catalog: enterCatalog,
  queries: enterQueries,
  jobs: enterJobs,
  pipelines: enterPipelines,
  lineage: enterLineage,
  metrics: enterMetrics,
};

// Forgets what the previous user saw.
function resetViews() {
  editor.result = null;
  renderResults();
  showSqlError(null);
  $('query-state').replaceChildren();
  catalogState.loaded = false;
  catalogState.token += 1;
  $('catalog-tree').replaceChildren();
  $('table-detail').replaceChildren(el('p', { class: 'dim', text: 'Pick a table in the tree.' }));
  queriesState.columns = null;
  queriesState.shown = '';
  $('queries-table').replaceChildren();
  lineageState.edges = null;
  lineageState.loading = null;
  $('charts').replaceChildren();
}

function init() {
  $('login').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', logout);
  initQueryView();
  $('catalog-refresh').addEventListener('click', () => {
    $('table-detail').replaceChildren(el('p', { class: 'dim', text: 'Pick a table in the tree.' }));
    loadCatalogs();
  });
  $('queries-table').addEventListener('click', onQueriesClick);
  $('queries-refresh').addEventListener('click', loadQueries);
  $('queries-filter').addEventListener('input', () => renderQueries(true));
  $('jobs-refresh').addEventListener('click', enterJobs);
  $('pipelines-refresh').addEventListener('click', enterPipelines);
  $('lineage-table').addEventListener('change', (e) => {
    if (e.target.value) go(`#lineage/${encodeURIComponent(e.target.value)}`);
  });
  $('lineage-refresh').addEventListener('click', () => {
    lineageState.edges = null;
    lineageState.loading = null;
    enterLineage(app.view === 'lineage' ? $('lineage-table').value : '');
  });
  $('metrics-refresh').addEventListener('click', loadMetrics);
  window.addEventListener('hashchange', route);
  checkSession();
}

init();
