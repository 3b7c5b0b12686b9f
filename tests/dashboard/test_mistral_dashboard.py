"""A host recovery in Horizon's Mistral dashboard, in headless Chromium:
log in as the admin user, the executions list, the recovery's overview,
its tasks, its output (the per-VM outcomes), the action execution of its
evacuation and its tasks' Result and Published views.  Each page's
screenshot is saved under the test's tmp directory (DASHBOARD_SCREENSHOTS:
also there, for the README's image)."""

import json
import os
import shutil
import urllib.parse

import pytest
from conftest import FAILED
from conftest import HOST
from conftest import MOVED
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.slow

TASKS = ("check_input", "confirm_fencing", "force_down_compute_service",
         "list_servers_on_host", "evacuate_servers", "report")
# The task that evacuates (one task execution per pass) and its action.
EVACUATE = "evacuate_servers"
RECOVER = "instance_ha.recover_servers"


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


def shown_json(element):
    """The JSON of the mistral-dashboard code block in ``element``, as its
    visible text."""
    return json.loads(element.find_element(By.CSS_SELECTOR, "pre").text)


def final_outcomes(servers):
    """name: (outcome, reason) of per-VM records, the 'waiting' ones (the
    next pass takes them up) left out."""
    return {s["name"]: (s["outcome"], s["reason"]) for s in servers
            if s["outcome"] != "waiting"}


def expected_outcomes(output):
    """MOVED moved, FAILED failed, each with its reason in the recovery's
    output."""
    reasons = {s["name"]: s["reason"] for s in output["servers"]}
    assert reasons[FAILED]
    return {**{name: ("moved", reasons[name]) for name in MOVED},
            FAILED: ("failed", reasons[FAILED])}


def task_links(dashboard, execution, task, fragment):
    """The paths of the links of ``task``'s rows (one per task execution)
    in the execution's task list whose address has ``fragment``."""
    dashboard.open(f"/mistral/tasks/{execution.id}/execution")
    return [urllib.parse.urlsplit(a.get_attribute("href")).path
            for a in dashboard.wait_for(
                lambda: dashboard.driver.find_elements(
                    By.XPATH, f"//tr[td[normalize-space()='{task}']]"
                              f"//a[contains(@href, '{fragment}')]"),
                f"the {task} rows' {fragment} links")]


def test_the_evacuation_action_execution_shows_each_vms_outcome(
        dashboard, recovery, tmp_path):
    """The task list, the evacuate_servers row's Type link (the task's
    action executions), the recover_servers row, its detail page: the
    output as JSON with each VM's outcome and reason.  (Its Output view,
    action_executions/ID/output, is linked from no page and answers 500
    alone.)"""
    execution, output = recovery
    shown = {}
    for path in task_links(dashboard, execution, EVACUATE,
                           "/action_executions/"):
        task_id = path.split("/")[-2]
        dashboard.open(path)
        row = dashboard.wait_for(
            lambda: dashboard.driver.find_element(
                By.XPATH, f"//tr[td[normalize-space()='{RECOVER}']]"),
            "the recover_servers action execution")
        assert task_id in row.text and "SUCCESS" in row.text
        row.find_element(
            By.CSS_SELECTOR, "a[href*='/action_executions/'][href$='/detail']"
        ).click()
        result = dashboard.wait_for(
            lambda: dashboard.driver.find_element(
                By.XPATH, "//dt[normalize-space()='Output']"
                          "/following-sibling::dd[1]"),
            "the action execution's output")
        text = dashboard.text()
        assert "Action Execution Details" in text and RECOVER in text
        assert task_id in text
        shown.update(final_outcomes(shown_json(result)["result"]["servers"]))
    assert shown == expected_outcomes(output)
    keep(dashboard, tmp_path, "action-execution")


def modal_json(dashboard, path, what):
    """Click the link to ``path`` (an ajax-modal View) on the page and
    return the JSON of the pop-up."""
    dashboard.driver.find_element(
        By.CSS_SELECTOR, f"a.ajax-modal[href='{path}']").click()
    body = dashboard.wait_for(
        lambda: dashboard.driver.find_element(
            By.CSS_SELECTOR, ".modal-body pre") and
        dashboard.driver.find_element(By.CSS_SELECTOR, ".modal-body"),
        f"the {what} pop-up")
    return shown_json(body)


def test_the_tasks_result_and_published_views(dashboard, recovery, tmp_path):
    """The task list's Result View of each evacuate_servers pass (the
    action's result) and Published View of report (the report variable):
    pop-ups with each VM's outcome and reason.  (Both views, tasks/ID/result
    and tasks/ID/published, answer 500 opened alone.)"""
    execution, output = recovery
    expected = expected_outcomes(output)
    shown = {}
    for i, path in enumerate(task_links(dashboard, execution, EVACUATE,
                                        "/result")):
        if i:
            dashboard.open(f"/mistral/tasks/{execution.id}/execution")
        shown.update(final_outcomes(
            modal_json(dashboard, path, "evacuate_servers Result")["servers"]))
    assert shown == expected
    keep(dashboard, tmp_path, "task-result")
    [path] = task_links(dashboard, execution, "report", "/published")
    report = modal_json(dashboard, path, "report Published")["report"]
    assert len(report) == len(expected)
    assert final_outcomes(report) == expected
    keep(dashboard, tmp_path, "task-published")
