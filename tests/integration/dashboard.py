#!/usr/bin/python3
"""dashboard.py - drive the web dashboard in headless Chromium (selenium).

Used by tests/integration/dashboard.sh, one check per run:

  dashboard.py overview URL SHOT QUEUE FIELD=VALUE...
      the overview's row of QUEUE shows every FIELD=VALUE (within 20 s);
      screenshot to SHOT
  dashboard.py job URL SHOT JOB ROWS FIRST
      the job page shows the job PENDING or STARTED first, then SUCCESS
      without a reload, ROWS in its rows field and a preview of its first
      rows (at most 20) whose first cell is FIRST,
      typed column headers and CSV/JSON links; screenshot to SHOT
  dashboard.py cancel URL JOB
      the job page shows the job STARTED; its Cancel button, confirmed,
      makes the page show FAILURE
  dashboard.py token URL TOKEN QUEUE
      the page asks for the token, refuses a wrong one, and with TOKEN
      shows the overview with QUEUE in it
  dashboard.py group URL GROUP JOB...
      the group page shows the group SUCCESS with exactly these jobs, each
      SUCCESS and linking its job page
  dashboard.py list URL QUEUE STATE COUNT
      the queue's page for STATE lists COUNT jobs and links a next page

Prints what it saw as "# " lines; exits 0 when the check passed. With
DASHBOARD_TEST_CA set (to the CA file of an HTTPS node's test certificate),
the browser accepts that node's certificate.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def say(*parts):
    print("# " + " ".join(str(p) for p in parts), flush=True)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    #  A node with a test CA's certificate (tls.sh): trust it like curl --cacert.
    if os.environ.get("DASHBOARD_TEST_CA"):
        options.add_argument("--ignore-certificate-errors")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def text_of(driver, css):
    try:
        return driver.find_element(By.CSS_SELECTOR, css).text.strip()
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def wait_for(driver, what, seconds, check):
    """Wait until check(driver) is truthy; returns its value or None."""
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        say("timed out waiting for", what)
        return None


def overview(driver, url, shot, queue, *expect):
    want = dict(item.split("=", 1) for item in expect)
    driver.get(url)
    row = 'tr[data-queue="%s"]' % queue

    def matches(d):
        seen = {f: text_of(d, '%s td[data-field="%s"]' % (row, f)) for f in want}
        matches.seen = seen
        return seen == want
    matches.seen = {}
    ok = wait_for(driver, "the overview's counts", 20, matches)
    say("overview row", queue, matches.seen)
    driver.save_screenshot(shot)
    return bool(ok)


def job(driver, url, shot, job_id, rows, first):
    driver.get(url + "#/job/" + job_id)
    first_state = wait_for(driver, "the job's state", 10, lambda d: text_of(d, "#job-state"))
    say("first state", first_state)
    if first_state not in ("PENDING", "STARTED"):
        return False
    # The page polls: the same page must come to show SUCCESS.
    marker = driver.execute_script("window.__same_page = 1; return 1;")
    done = wait_for(driver, "SUCCESS", 30, lambda d: text_of(d, "#job-state") == "SUCCESS")
    if not done or driver.execute_script("return window.__same_page") != marker:
        say("state now", text_of(driver, "#job-state"))
        return False
    have = wait_for(driver, "the preview", 10,
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#preview tbody tr"))
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#preview tbody tr:first-child td")]
    heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#preview thead th")]
    shown_rows = text_of(driver, 'dd[data-field="rows"]')
    csv = driver.find_elements(By.CSS_SELECTOR, "#download-csv")
    say("preview rows", len(have or []), "first row", cells, "headers", heads, "rows field", shown_rows)
    driver.save_screenshot(shot)
    # The preview holds the first 20 rows (GET /jobs/{id}/detail's default).
    return (have is not None and len(have) == min(int(rows), 20) and cells and cells[0] == first
            and all("(" in h for h in heads) and shown_rows == rows and len(csv) == 1
            and csv[0].get_attribute("href").endswith("/jobs/%s/results?format=csv" % job_id))


def cancel(driver, url, job_id):
    driver.get(url + "#/job/" + job_id)
    started = wait_for(driver, "STARTED", 20, lambda d: text_of(d, "#job-state") == "STARTED")
    if not started:
        say("state", text_of(driver, "#job-state"))
        return False
    button = wait_for(driver, "the cancel button", 5,
                      lambda d: d.find_element(By.CSS_SELECTOR, "#cancel"))
    button.click()
    alert = wait_for(driver, "the confirmation", 5, lambda d: d.switch_to.alert)
    if not alert:
        return False
    say("confirmation:", alert.text)
    alert.accept()
    ended = wait_for(driver, "FAILURE", 15, lambda d: text_of(d, "#job-state") == "FAILURE")
    say("state after cancel", text_of(driver, "#job-state"), "error",
        text_of(driver, 'dd[data-field="error"]'))
    return bool(ended)


def token(driver, url, good, queue):
    driver.get(url)
    form = wait_for(driver, "the token form", 10,
                    lambda d: d.find_element(By.ID, "token-form").is_displayed())
    if not form:
        return False
    say("token form shown")
    driver.find_element(By.ID, "token-input").send_keys("wrong-" + good)
    driver.find_element(By.ID, "token-submit").click()
    refused = wait_for(driver, "the refusal", 10, lambda d: "refused" in (text_of(d, "#token-error") or ""))
    say("wrong token:", text_of(driver, "#token-error"))
    if not refused:
        return False
    driver.find_element(By.ID, "token-input").send_keys(good)
    driver.find_element(By.ID, "token-submit").click()
    shown = wait_for(driver, "the overview", 10,
                     lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-queue="%s"]' % queue))
    hidden = not driver.find_element(By.ID, "token-form").is_displayed()
    # The token is kept for the session: a reload needs no prompt.
    driver.refresh()
    again = wait_for(driver, "the overview after a reload", 10,
                     lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-queue="%s"]' % queue))
    say("overview with the token:", bool(shown), "form hidden:", hidden, "after reload:", bool(again))
    return bool(shown) and hidden and bool(again)


def group(driver, url, group_id, *jobs):
    driver.get(url + "#/group/" + group_id)
    rows = wait_for(driver, "the group's jobs", 15,
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr"))
    state = text_of(driver, "main .state")
    seen = sorted(r.get_attribute("data-job") for r in rows or [])
    states = [s.text for s in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody .state")]
    links = driver.find_elements(By.CSS_SELECTOR, '#jobs tbody a[href^="#/job/"]')
    say("group", state, "jobs", seen, "states", states)
    return state == "SUCCESS" and seen == sorted(jobs) and states == ["SUCCESS"] * len(jobs) \
        and len(links) == len(jobs)


def listing(driver, url, queue, state, count):
    driver.get(url + "#/queue/%s?state=%s" % (queue, state))
    rows = wait_for(driver, "the job list", 15,
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr"))
    nxt = driver.find_elements(By.LINK_TEXT, "next page")
    say("listed", len(rows or []), "next page link:", bool(nxt))
    return rows is not None and len(rows) == int(count) and len(nxt) == 1


def main():
    check, url, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    checks = {"overview": overview, "job": job, "cancel": cancel, "token": token, "list": listing,
              "group": group}
    driver = browser()
    try:
        ok = checks[check](driver, url, *args)
        for entry in driver.get_log("browser"):
            say("console:", entry.get("level"), entry.get("message"))
    finally:
        driver.quit()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
