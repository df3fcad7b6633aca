"""The web console at /ui (issue 35) in a real browser: Debian's Chromium, headless, driven
through its chromedriver by selenium. A person signs in over HTTPS with a password, runs a
query and pages its rows, sees an error's position, cancels a long query, browses a table
whose names are HTML, opens a query's details and kills a running one, follows a table's
lineage and reads the charts; a user without rights meets the same `Access Denied` as in
SQL. Screenshots land in test-artifacts/console/ for a person to look at. The console's
API refuses cross-site requests and expired sessions (checked without the browser)."""

import json
import os
import pathlib
import subprocess
import threading
import time

import pytest
import requests
import trino
import urllib3
from trino.auth import BasicAuthentication

from lakehouse import BIN, Server

PASSWORD = "console horse battery"
ADMIN = {"system": "admin"}
EVIL_TABLE = "<img src=x onerror=alert(1)>"
EVIL_COLUMN = "<script>alert(2)</script>"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts" / "console"

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException, StaleElementReferenceException)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def no_ca_bundle():
    # requests prefers these variables over `verify=False` (psf/requests#3829).
    kept = {name: os.environ.pop(name) for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
            if name in os.environ}
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    yield
    os.environ.update(kept)


def add_user(password_file, user):
    done = subprocess.run([BIN, "user", "add", user, "--password-file", str(password_file)],
                          input=PASSWORD + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def cursor(server, user="root", roles=None):
    return trino.dbapi.connect(host="localhost", port=server.https_port, user=user,
                               http_scheme="https", auth=BasicAuthentication(user, PASSWORD),
                               verify=False, roles=roles).cursor()


def run(server, sql, user="root", roles=ADMIN):
    cur = cursor(server, user, roles)
    cur.execute(sql)
    return cur.fetchall()


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console")
    password_file = folder / "password.db"
    for user in ("root", "eve"):
        add_user(password_file, user)
    (folder / "access-control.properties").write_text(
        "access-control.name=sql-standard\nsql-standard.admin-users=root\n")
    server = Server(folder / "warehouse", "--password-file", str(password_file),
                    "--access-control-config", str(folder / "access-control.properties"))
    server.base = f"https://localhost:{server.https_port}"
    for sql in [
        "CREATE SCHEMA iceberg.shop",
        "CREATE TABLE iceberg.shop.orders (id BIGINT, region VARCHAR, total DOUBLE) "
        "WITH (partitioning = ARRAY['region'])",
        "INSERT INTO iceberg.shop.orders VALUES (1, 'EU', 10.5), (2, 'US', 20.0)",
        "INSERT INTO iceberg.shop.orders VALUES (3, 'EU', 7.25)",
        f'CREATE TABLE iceberg.shop."{EVIL_TABLE}" ("{EVIL_COLUMN}" BIGINT COMMENT '
        "'<b>not bold</b>', note VARCHAR)",
        f'INSERT INTO iceberg.shop."{EVIL_TABLE}" VALUES (1, \'<i>x</i>\')',
        "CREATE TABLE iceberg.shop.by_region AS "
        "SELECT region, sum(total) AS total FROM iceberg.shop.orders GROUP BY region",
    ]:
        run(server, sql)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--ignore-certificate-errors", "--window-size=1280,900"):
        options.add_argument(argument)
    downloads = ARTIFACTS / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait(driver, condition, timeout=30):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition())


def shot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def text(driver, css):
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def sign_in(driver, server, user, password=PASSWORD):
    driver.get(f"{server.base}/ui/")
    wait(driver, lambda: driver.find_element(By.ID, "login-user").is_displayed())
    for field, value in (("login-user", user), ("login-password", password)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.ID, "login-submit").click()


def run_in_editor(driver, sql, until=("FINISHED", "FAILED")):
    driver.get(driver.current_url.split("#")[0] + "#query")
    editor = driver.find_element(By.ID, "sql")
    wait(driver, editor.is_displayed)
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(sql)
    driver.find_element(By.ID, "run").click()
    if until:
        wait(driver, lambda: any(state in text(driver, "#query-state") for state in until))


def result_rows(driver):
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#results table tbody tr")]


def click(driver, xpath):
    """Clicks what `xpath` finds once it is there; the queries list redraws itself every few
    seconds, so an element found may be replaced before the click lands."""
    def clicked():
        try:
            found = driver.find_elements(By.XPATH, xpath)
            if found:
                found[0].click()
                return True
        except StaleElementReferenceException:
            pass
        return False
    wait(driver, clicked)


def go(driver, view):
    driver.get(driver.current_url.split("#")[0] + "#" + view)


def test_sign_in_run_page_and_download(lakehouse, browser):
    sign_in(browser, lakehouse, "root", "wrong password")
    wait(browser, lambda: "Invalid credentials" in text(browser, "#login-error"))
    sign_in(browser, lakehouse, "root")
    wait(browser, lambda: text(browser, "#whoami") == "root")
    shot(browser, "01-signed-in")

    run_in_editor(browser, "SELECT 1 AS one, 'x' AS two")
    assert "FINISHED" in text(browser, "#query-state")
    assert result_rows(browser) == [["1", "x"]]
    assert [th.text.split("\n")[0] for th in
            browser.find_elements(By.CSS_SELECTOR, "#results thead th")] == ["one", "two"]
    keywords = [k.text for k in browser.find_elements(By.CSS_SELECTOR, "#sql-highlight .kw")]
    assert "SELECT" in keywords, keywords

    run_in_editor(browser, "SELECT value, 'v' || CAST(value AS VARCHAR) AS label "
                           "FROM generate_series(1, 250) ORDER BY value")
    assert "250" in text(browser, "#page-info")
    assert result_rows(browser)[0] == ["1", "v1"] and len(result_rows(browser)) == 100
    browser.find_element(By.ID, "page-next").click()
    wait(browser, lambda: result_rows(browser)[0] == ["101", "v101"])
    shot(browser, "02-results-page-2")

    for old in browser.downloads.glob("*.csv"):
        old.unlink()
    browser.find_element(By.ID, "download-csv").click()
    wait(browser, lambda: any(browser.downloads.glob("query-*.csv")))
    csv = next(browser.downloads.glob("query-*.csv"))
    wait(browser, lambda: csv.read_text().count("\n") >= 251)
    lines = csv.read_text().splitlines()
    assert lines[0] == "value,label" and lines[1] == "1,v1" and len(lines) == 251


def test_errors_show_their_position(lakehouse, browser):
    run_in_editor(browser, "SELECT (1\n  FROM iceberg.shop.orders")
    error = text(browser, "#query-error")
    assert "FAILED" in text(browser, "#query-state")
    assert "SYNTAX_ERROR" in error and "line 2, column 3" in error, error
    run_in_editor(browser, "SELECT nope FROM iceberg.shop.orders")
    assert "Column 'nope' cannot be resolved" in text(browser, "#query-error")
    shot(browser, "03-error-position")


def test_a_long_query_is_cancelled(lakehouse, browser):
    run_in_editor(browser, "SELECT count(*) FROM generate_series(1, 100000000000)", until=None)
    wait(browser, lambda: "RUNNING" in text(browser, "#query-state"))
    browser.find_element(By.ID, "cancel").click()
    wait(browser, lambda: "CANCELED" in text(browser, "#query-state"))
    shot(browser, "04-cancelled")
    rows = run(lakehouse, "SELECT state, error_code FROM system.runtime.queries "
                          "WHERE query LIKE '%100000000000)' AND source = 'aichemy-console'")
    assert rows and rows[0] == ["FAILED", "USER_CANCELED"], rows


def test_browse_a_table_whose_names_are_html(lakehouse, browser):
    go(browser, "catalog")
    for css, name in ((".tree-catalog", "iceberg"), (".tree-schema", "shop"),
                      (".tree-table", EVIL_TABLE)):
        wait(browser, lambda: any(e.text == name for e in browser.find_elements(By.CSS_SELECTOR, css)))
        next(e for e in browser.find_elements(By.CSS_SELECTOR, css) if e.text == name).click()
    wait(browser, lambda: text(browser, "#table-title") == f"iceberg.shop.{EVIL_TABLE}")
    wait(browser, lambda: EVIL_COLUMN in text(browser, "#table-columns"))
    assert "<b>not bold</b>" in text(browser, "#table-columns")
    # The definition quotes the names that need it: it runs as it reads.
    wait(browser, lambda: f'CREATE TABLE iceberg.shop."{EVIL_TABLE}"' in text(browser, "#table-ddl"))
    assert f'"{EVIL_COLUMN}" bigint' in text(browser, "#table-ddl")
    wait(browser, lambda: "<i>x</i>" in text(browser, "#table-sample"))
    detail = browser.find_element(By.ID, "table-detail")
    assert detail.find_elements(By.CSS_SELECTOR, "script, img, b, i") == []
    assert no_alert(browser)
    shot(browser, "05-catalog-html-names")

    next(e for e in browser.find_elements(By.CSS_SELECTOR, ".tree-table")
         if e.text == "orders").click()
    wait(browser, lambda: text(browser, "#table-title") == "iceberg.shop.orders")
    wait(browser, lambda: "partitioning" in text(browser, "#table-ddl"))
    wait(browser, lambda: len(browser.find_elements(
        By.CSS_SELECTOR, "#table-snapshots tbody tr")) >= 2)
    wait(browser, lambda: len(browser.find_elements(
        By.CSS_SELECTOR, "#table-sample tbody tr")) == 3)
    shot(browser, "06-catalog-table")


def long_query(server, rows):
    """Starts a query of root's that runs until stopped; answers its thread and where the
    thread leaves the error the query ended with."""
    outcome = {}

    def query():
        cur = cursor(server)
        try:
            cur.execute(f"SELECT count(*) FROM generate_series(1, {rows})")
            cur.fetchall()
        except trino.exceptions.TrinoUserError as e:
            outcome["error"] = e
    worker = threading.Thread(target=query)
    worker.start()
    return worker, outcome


def test_queries_details_and_kill(lakehouse, browser):
    worker, outcome = long_query(lakehouse, 100000000001)
    try:
        go(browser, "queries")
        kill = "//tr[contains(., '100000000001')]//button[contains(@class, 'kill')]"
        wait(browser, lambda: browser.find_elements(By.XPATH, kill))
        shot(browser, "07-queries")
        click(browser, kill)
        worker.join(timeout=60)
    finally:
        worker.join(timeout=60)
    assert outcome["error"].error_name == "ADMINISTRATIVELY_KILLED", outcome
    assert "Killed from the console" in outcome["error"].message

    go(browser, "queries")
    row = "//tr[@data-query-id][contains(., 'FINISHED')][contains(., 'by_region')]"
    click(browser, row + "/td[2]")
    wait(browser, lambda: "CREATE TABLE iceberg.shop.by_region" in text(browser, "#query-detail"))
    assert "#queries/" in browser.current_url
    query_id = browser.current_url.rsplit("/", 1)[1]
    assert query_id in text(browser, "#query-detail")
    assert "iceberg.shop.orders" in text(browser, "#query-detail")
    shot(browser, "08-query-detail")


def test_lineage_ingestion_pipelines_and_charts(lakehouse, browser):
    go(browser, "lineage/iceberg.shop.by_region")
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#lineage-graph svg g.node")) >= 2)
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph svg text")]
    assert "iceberg.shop.orders" in names and "iceberg.shop.by_region" in names, names
    shot(browser, "09-lineage")
    for view, table in (("jobs", "#ingestions-table"), ("pipelines", "#pipeline-runs-table")):
        go(browser, view)
        wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, f"{table} table, table{table}"))
        assert not text(browser, f"#view-{view} .error")
    go(browser, "metrics")
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#charts figure.chart")) >= 10)
    # The server's first point and the one read now: every series has a line.
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#charts polyline")) >= 10)
    shot(browser, "10-charts")


def test_a_user_without_rights_sees_access_denied(lakehouse, browser):
    browser.find_element(By.ID, "logout").click()
    wait(browser, lambda: browser.find_element(By.ID, "login-user").is_displayed())
    sign_in(browser, lakehouse, "eve")
    wait(browser, lambda: text(browser, "#whoami") == "eve")
    run_in_editor(browser, "SELECT * FROM iceberg.shop.orders")
    assert "Access Denied: Cannot select from table iceberg.shop.orders" in text(
        browser, "#query-error")
    shot(browser, "11-access-denied")
    go(browser, "queries")
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#queries-table tr[data-query-id]"))
    users = {row.find_elements(By.TAG_NAME, "td")[2].text for row in
             browser.find_elements(By.CSS_SELECTOR, "#queries-table tr[data-query-id]")}
    assert users == {"eve"}, users
    go(browser, "metrics")
    wait(browser, lambda: "Access Denied" in text(browser, "#view-metrics .error"))


def api(server, path, cookie=None, csrf=None, method="GET", headers=None, data=None):
    sent = dict(headers or {})
    if cookie:
        sent["Cookie"] = f"aichemy_console={cookie}"
    if csrf:
        sent["X-AIchemy-CSRF"] = csrf
    return requests.request(method, f"{server.base}{path}", headers=sent, data=data,
                            verify=False, timeout=30)


def login(server, user="root", password=PASSWORD):
    answer = requests.post(f"{server.base}/ui/api/login", verify=False, timeout=30,
                           json={"user": user, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.cookies["aichemy_console"], answer.json()["csrf"], answer


def test_the_api_refuses_cross_site_requests_and_ended_sessions(lakehouse):
    page = api(lakehouse, "/ui/")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and page.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in policy

    cookie, csrf, answer = login(lakehouse)
    set_cookie = answer.headers["Set-Cookie"]
    assert all(flag in set_cookie for flag in ("HttpOnly", "Secure", "SameSite=Strict"))
    statement = dict(method="POST", data="SELECT 1")
    assert api(lakehouse, "/v1/statement", cookie, csrf, **statement).status_code == 200
    assert api(lakehouse, "/v1/statement", cookie, **statement).status_code == 403
    assert api(lakehouse, "/v1/statement", cookie, csrf[:-2] + "AA", **statement).status_code == 403
    for forged in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = api(lakehouse, "/v1/statement", cookie, csrf, headers=forged, **statement)
        assert refused.status_code == 403 and "Cross-site" in refused.text
    # A console cookie is no token of the Iceberg REST catalog.
    rest = requests.get(f"{lakehouse.base}/iceberg/v1/config", verify=False, timeout=30,
                        headers={"Authorization": f"Bearer {cookie}"})
    assert rest.status_code == 401

    # Passwords never travel over plain HTTP.
    plain = requests.post(f"http://127.0.0.1:{lakehouse.http_port}/ui/api/login", timeout=30,
                          json={"user": "root", "password": PASSWORD})
    assert plain.status_code == 403 and "HTTPS" in plain.json()["message"]
    assert requests.post(f"{lakehouse.base}/ui/api/login", verify=False, timeout=30,
                         json={"user": "root", "password": "nope"}).status_code == 401

    assert api(lakehouse, "/ui/api/logout", cookie, csrf, method="POST").status_code == 204
    assert api(lakehouse, "/ui/api/session", cookie).status_code == 401
    assert api(lakehouse, "/v1/statement", cookie, csrf, **statement).status_code == 401


def test_sessions_expire(tmp_path):
    server = Server(tmp_path / "warehouse", env={"AICHEMY_SERVER__CONSOLE_SESSION_SECONDS": "1"})
    try:
        server.base = f"http://127.0.0.1:{server.http_port}"
        answer = requests.post(f"{server.base}/ui/api/login", json={"user": "ann"}, timeout=30)
        assert answer.status_code == 200, answer.text
        cookie, csrf = answer.cookies["aichemy_console"], answer.json()["csrf"]
        assert api(server, "/ui/api/session", cookie).json()["user"] == "ann"
        time.sleep(2.1)
        assert api(server, "/ui/api/session", cookie).status_code == 401
        expired = api(server, "/v1/statement", cookie, csrf, method="POST", data="SELECT 1")
        assert expired.status_code == 401 and "expired" in expired.text
    finally:
        server.stop()


def test_the_page_loads_only_from_the_server_and_compressed(lakehouse):
    sizes = {}
    for path in ("/ui/", "/ui/app.js", "/ui/app.css"):
        answer = requests.get(f"{lakehouse.base}{path}", verify=False, timeout=30,
                              headers={"Accept-Encoding": "gzip"}, stream=True)
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == "gzip"
        sizes[path] = len(answer.raw.read(decode_content=False))
        tag = answer.headers["ETag"]
        again = requests.get(f"{lakehouse.base}{path}", verify=False, timeout=30,
                             headers={"If-None-Match": tag})
        assert again.status_code == 304
    page = requests.get(f"{lakehouse.base}/ui/", verify=False, timeout=30).text
    script = requests.get(f"{lakehouse.base}/ui/app.js", verify=False, timeout=30).text
    for body in (page, script):
        for outside in ("https://", "cdn", "googleapis"):
            assert outside not in body.replace("http://www.w3.org/2000/svg", ""), outside
    assert "innerHTML" not in script
    (ARTIFACTS).mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "transfer.json").write_text(json.dumps(sizes, indent=2))
    assert sum(sizes.values()) < 100_000, sizes
    assert os.path.exists(ARTIFACTS)


def test_kill_query_is_trinos_and_asks_for_the_right(lakehouse):
    """`CALL system.runtime.kill_query` as Trino's: the owner or an administrator kills;
    others are refused; an unknown or ended query is named."""
    def refusal(sql, user):
        with pytest.raises(trino.exceptions.TrinoUserError) as failure:
            run(lakehouse, sql, user=user, roles=None)
        return failure.value

    missing = refusal("CALL system.runtime.kill_query(query_id => '20260101_000000_00000_zzzzz')",
                      "eve")
    assert (missing.error_name, missing.message) == (
        "NOT_FOUND", "Target query not found: 20260101_000000_00000_zzzzz")
    worker, outcome = long_query(lakehouse, 100000000002)
    try:
        deadline = time.monotonic() + 30
        rows = []
        while not rows and time.monotonic() < deadline:
            rows = run(lakehouse, "SELECT query_id FROM system.runtime.queries WHERE state = "
                                  "'RUNNING' AND query LIKE '%100000000002)'")
        (query_id,), = rows
        denied = refusal(f"CALL system.runtime.kill_query('{query_id}', 'no')", "eve")
        assert (denied.error_name, denied.message) == (
            "PERMISSION_DENIED", "Access Denied: Cannot kill query owned by root")
        run(lakehouse, f"CALL system.runtime.kill_query(query_id => '{query_id}')")
        worker.join(timeout=60)
        assert outcome["error"].error_name == "ADMINISTRATIVELY_KILLED"
        assert outcome["error"].message == "Query killed. No message provided."
        ended = refusal(f"CALL system.runtime.kill_query('{query_id}')", "root")
        assert ended.message == f"Target query is not running: {query_id}"
    finally:
        worker.join(timeout=60)
