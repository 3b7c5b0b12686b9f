"""Headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium, for the dashboard tier.

The driver is Debian's /usr/bin/chromedriver, named explicitly (Selenium
Manager never runs: nothing is downloaded); the browser runs with a fresh
profile (--user-data-dir in the test's directory) and without anything
that reaches out of the machine.  chromedriver and its Chromium are
stopped by their PIDs (driver.quit, then the driver service's process).
"""

import os
import time

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")


def missing():
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (f"no {path} (Debian packages chromium, "
                    f"chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


def start(workdir):
    """A Selenium Chrome driver on headless Chromium, its profile and its
    driver's log under ``workdir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = os.path.join(str(workdir), "chromium-profile")
    os.makedirs(profile, exist_ok=True)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Warnings only: at its default level chromedriver logs every
    # command's parameters, the text typed into a password field too.
    service = Service(executable_path=CHROMEDRIVER,
                      service_args=["--log-level=WARNING"],
                      log_output=os.path.join(str(workdir),
                                              "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    return driver


def stop(driver):
    """Quit the browser, then make sure chromedriver is gone by its PID."""
    process = getattr(driver.service, "process", None)
    try:
        driver.quit()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


class Dashboard:
    """Horizon in the browser: pages by path, waits, screenshots."""

    def __init__(self, driver, url):
        self.driver = driver
        self.url = url

    def open(self, path):
        self.driver.get(self.url + path)
        return self

    def wait_for(self, predicate, what, timeout=60.0):
        """predicate()'s first true value (errors of a page still being
        built count as false); AssertionError after ``timeout``."""
        from selenium.common import exceptions

        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except (exceptions.NoSuchElementException,
                    exceptions.StaleElementReferenceException):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what} on "
                    f"{self.driver.current_url}: {self.text()[:2000]}")
            time.sleep(0.2)

    def text(self):
        """The visible text of the page."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def screenshot(self, path, full_page=True):
        """A PNG of the page at ``path`` (the whole page's height when
        ``full_page``)."""
        if full_page:
            height = self.driver.execute_script(
                "return document.documentElement.scrollHeight")
            self.driver.set_window_size(1280, max(900, min(height, 4000)))
        self.driver.save_screenshot(str(path))
        return path
