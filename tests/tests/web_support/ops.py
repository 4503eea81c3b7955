"""Drives the sessrec-web console in headless Chromium (Selenium and chromedriver) for the
operations tests and prints what it saw as one JSON object.

usage: ops.py MODE PROFILE-DIR ARTEFACT-DIR BASE-URL ARGS...
  tls SPKI USER PASSWORD    log in over TLS, the certificate pinned by its SPKI hash
  proxy HEADER USER         open the list with HEADER: USER added to every request
"""
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

mode, profile, artefacts, base = sys.argv[1:5]
args = sys.argv[5:]


def browser(extra=()):
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1400,1000",
                f"--user-data-dir={profile}", *extra):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_page(driver):
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))


def log_in(driver, user, password):
    driver.get(base + "/login")
    wait_page(driver)
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 30).until(lambda d: "/login" not in d.current_url
                                    or d.find_elements(By.ID, "login-error"))
    wait_page(driver)


def page_facts(driver):
    return {
        "url": driver.current_url,
        "h1": " ".join(e.text for e in driver.find_elements(By.TAG_NAME, "h1")),
        "who": " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "nav .who")),
    }


result = {}
if mode == "tls":
    spki, user, password = args
    driver = browser([f"--ignore-certificate-errors-spki-list={spki}"])
    try:
        log_in(driver, user, password)
        result.update(page_facts(driver))
        # The session cookie is HttpOnly: page script cannot read it.
        result["script_cookies"] = driver.execute_script("return document.cookie")
        result["secure_context"] = driver.execute_script("return window.isSecureContext")
        result["protocol"] = driver.execute_script("return location.protocol")
        result["cookies"] = driver.get_cookies()
        driver.save_screenshot(os.path.join(artefacts, "tls-list.png"))
    finally:
        driver.quit()
elif mode == "proxy":
    header, user = args
    driver = browser()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {header: user}})
        driver.get(base + "/sessions")
        wait_page(driver)
        result.update(page_facts(driver))
        driver.save_screenshot(os.path.join(artefacts, "proxy.png"))
    finally:
        driver.quit()
else:
    sys.exit(f"unknown mode {mode}")

print(json.dumps(result))
