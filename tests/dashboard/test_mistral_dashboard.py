"""A host recovery in Horizon's Mistral dashboard, in headless Chromium:
log in as the admin user, the executions list, the recovery's overview,
its tasks and its output (the per-VM outcomes).  Each page's screenshot
is saved under the test's tmp directory (DASHBOARD_SCREENSHOTS: also
there, for the README's image)."""

import os
import shutil

import pytest
from conftest import FAILED
from conftest import HOST
from conftest import MOVED
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.slow

TASKS = ("check_input", "confirm_fencing", "force_down_compute_service",
         "list_servers_on_host", "evacuate_servers", "report")


def keep(dashboard, tmp_path, name):
    """The page's screenshot in tmp_path (and DASHBOARD_SCREENSHOTS)."""
    path = dashboard.screenshot(tmp_path / f"{name}.png")
    keep_dir = os.environ.get("DASHBOARD_SCREENSHOTS")
    if keep_dir:
        os.makedirs(keep_dir, exist_ok=True)
        shutil.copy(path, os.path.join(keep_dir, f"{name}.png"))
        with open(os.path.join(keep_dir, f"{name}.txt"), "w",
                  encoding="utf-8") as f:
            f.write(dashboard.text())
    return path


def test_login_page_renders(horizon, tmp_path):
    """Horizon serves its login page with its compressed static files."""
    import browser

    driver = browser.start(tmp_path)
    try:
        page = browser.Dashboard(driver, horizon.url).open("/auth/login/")
        assert "Login" in driver.title
        assert driver.find_element(By.ID, "id_username").is_displayed()
        stylesheets = driver.find_elements(By.CSS_SELECTOR,
                                           "link[rel=stylesheet]")
        assert any("/static/dashboard/css/" in s.get_attribute("href")
                   for s in stylesheets)
        assert keep(page, tmp_path, "login").stat().st_size > 0
    finally:
        browser.stop(driver)


def test_the_executions_list_shows_the_recovery(dashboard, recovery,
                                                tmp_path):
    execution, _ = recovery
    dashboard.open("/mistral/executions/")
    row = dashboard.wait_for(
        lambda: dashboard.driver.find_element(
            By.XPATH, f"//tr[contains(., '{execution.id}')]"),
        "the recovery's row")
    assert "instance_ha.host_evacuate" in row.text
    assert execution.state.capitalize() in row.text
    keep(dashboard, tmp_path, "executions")


def test_the_recovery_overview(dashboard, recovery, tmp_path):
    execution, _ = recovery
    dashboard.open(f"/mistral/executions/{execution.id}/detail")
    text = dashboard.wait_for(
        lambda: execution.id in dashboard.text() and dashboard.text(),
        "the execution's overview")
    assert "instance_ha.host_evacuate" in text
    assert f"evacuate {HOST}" in text
    assert FAILED in text               # state_info names the failed VM
    keep(dashboard, tmp_path, "overview")


def test_the_recovery_tasks(dashboard, recovery, tmp_path):
    execution, _ = recovery
    dashboard.open(f"/mistral/tasks/{execution.id}/execution")
    text = dashboard.wait_for(
        lambda: "evacuate_servers" in dashboard.text() and dashboard.text(),
        "the execution's tasks")
    for task in TASKS:
        assert task in text
    keep(dashboard, tmp_path, "tasks")


def test_the_recovery_output_has_each_vms_outcome(dashboard, recovery,
                                                  tmp_path):
    execution, output = recovery
    assert {s["name"]: s["outcome"] for s in output["servers"]} == \
        {**{name: "moved" for name in MOVED}, FAILED: "failed"}
    # The list's Output "View": a modal (its page alone is a
    # mistral-dashboard 500: no template mistral/default/code.html).
    dashboard.open("/mistral/executions/")
    dashboard.wait_for(
        lambda: dashboard.driver.find_element(
            By.CSS_SELECTOR, f"a[href*='{execution.id}/output']"),
        "the recovery's Output link").click()
    text = dashboard.wait_for(
        lambda: FAILED in dashboard.driver.find_element(
            By.CSS_SELECTOR, ".modal-body").text and dashboard.text(),
        "the execution's output")
    for name in (*MOVED, FAILED):
        assert name in text
    assert '"moved"' in text and '"failed"' in text
    keep(dashboard, tmp_path, "output")
