"""Software team: projects, the employees working on them and their tickets."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers, person_names

DB_ID = "software_team"

SCHEMA = """
CREATE TABLE project (
    project_id INTEGER PRIMARY KEY,
    proj_name TEXT NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL,
    start_yr INTEGER NOT NULL,
    budget_usd REAL NOT NULL
);
CREATE TABLE employee (
    emp_id INTEGER PRIMARY KEY,
    emp_name TEXT NOT NULL,
    job_role TEXT NOT NULL,
    seniority TEXT NOT NULL,
    hire_yr INTEGER NOT NULL,
    salary INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    FOREIGN KEY (project_id) REFERENCES project (project_id)
);
CREATE TABLE ticket (
    ticket_id INTEGER PRIMARY KEY,
    summary TEXT NOT NULL,
    project_id INTEGER NOT NULL,
    assignee_id INTEGER NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    story_points INTEGER NOT NULL,
    opened_date DATE NOT NULL,
    FOREIGN KEY (project_id) REFERENCES project (project_id),
    FOREIGN KEY (assignee_id) REFERENCES employee (emp_id)
);
"""

PROJECTS = ["Apollo", "Borealis", "Cobalt", "Driftwood", "Ember", "Falcon", "Granite", "Helix", "Indigo",
            "Juniper", "Kestrel", "Lantern", "Monsoon", "Nimbus", "Orchid"]
PLATFORMS = ["Web", "Mobile", "Data", "Embedded"]
PROJECT_STATUSES = ["Active", "Active", "Active", "On Hold", "Completed"]
ROLES = {  # role: base salary
    "Backend Developer": 98000, "Frontend Developer": 92000, "QA Engineer": 78000, "DevOps Engineer": 104000,
    "Designer": 85000, "Product Manager": 112000, "Data Engineer": 101000,
}
SENIORITY = {"Junior": 0.75, "Mid": 1.0, "Senior": 1.3}
VERBS = ["Fix", "Refactor", "Add tests for", "Document", "Speed up", "Redesign", "Migrate", "Add logging to"]
COMPONENTS = ["login page", "payment flow", "search API", "user profile", "export job", "notification service",
              "settings screen", "dashboard", "image upload", "audit log", "signup form", "report builder",
              "cache layer", "sync worker", "onboarding wizard"]
PRIORITIES, PRIORITY_WEIGHTS = ["Low", "Medium", "High", "Critical"], [25, 40, 25, 10]
TICKET_STATUSES, TICKET_WEIGHTS = ["Open", "In Progress", "Resolved", "Closed"], [30, 25, 20, 25]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    budgets = distinct_numbers(rng, 80, 2400, len(PROJECTS))
    project = [(pid, name, rng.choice(PLATFORMS), rng.choice(PROJECT_STATUSES), rng.randint(2017, 2024),
                budgets[pid - 1] * 1000.0) for pid, name in enumerate(PROJECTS, start=1)]

    names = person_names(rng, 55)
    employee, salaries = [], []
    for eid in range(1, 56):
        role = rng.choice(list(ROLES))
        seniority = rng.choices(list(SENIORITY), [30, 45, 25])[0]
        salary = round(ROLES[role] * SENIORITY[seniority]) // 1000 * 1000 + 50 * rng.randint(0, 300)
        while salary in salaries:  # distinct salaries: "the highest paid" has one answer
            salary += 50
        salaries.append(salary)
        pid = eid if eid <= len(project) else rng.randint(1, len(project))  # every project has someone
        employee.append((eid, names[eid - 1], role, seniority, rng.randint(2012, 2024), salary, pid))
    staff = {pid: [e[0] for e in employee if e[6] == pid] for pid in range(1, len(project) + 1)}

    summaries = rng.sample([f"{verb} {component}" for verb in VERBS for component in COMPONENTS], 120)
    idle = rng.sample(range(1, len(employee) + 1), 6)  # a few employees have no ticket yet
    ticket = []
    for tid, summary in enumerate(summaries, start=1):
        pid = rng.randint(1, len(project))
        people = [eid for eid in staff[pid] if eid not in idle] or staff[pid]
        ticket.append((tid, summary, pid, rng.choice(people), rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
                       rng.choices(TICKET_STATUSES, TICKET_WEIGHTS)[0], rng.choice([1, 2, 3, 5, 8, 13]),
                       date_between(rng, "2023-06-01", "2024-09-30")))
    return {"project": project, "employee": employee, "ticket": ticket}


PROJECT = "SELECT proj_name AS project FROM project"
EMPLOYEE = "SELECT emp_name AS emp FROM employee"

TEMPLATES = [
    {"category": "where",
     "question": "What are the names of the projects with status {status}?",
     "query": "SELECT proj_name FROM project WHERE status = '{status}'",
     "slots": "SELECT DISTINCT status FROM project"},
    {"category": "where",
     "question": "Which employees were hired after {year}? Give their names and roles.",
     "query": "SELECT emp_name, job_role FROM employee WHERE hire_yr > {year}",
     "slots": [{"year": 2020}, {"year": 2022}, {"year": 2023}]},
    {"category": "where",
     "question": "Which {seniority} employees work as {role}?",
     "query": "SELECT emp_name FROM employee WHERE seniority = '{seniority}' AND job_role = '{role}'",
     "slots": "SELECT DISTINCT seniority, job_role AS role FROM employee"},
    {"category": "join",
     "question": "What are the summaries of the tickets assigned to {emp}?",
     "query": "SELECT T1.summary FROM ticket AS T1 JOIN employee AS T2 ON T1.assignee_id = T2.emp_id "
              "WHERE T2.emp_name = '{emp}'",
     "slots": EMPLOYEE},
    {"category": "join",
     "question": "Who works on the {project} project?",
     "query": "SELECT T1.emp_name FROM employee AS T1 JOIN project AS T2 ON T1.project_id = T2.project_id "
              "WHERE T2.proj_name = '{project}'",
     "slots": PROJECT},
    {"category": "join",
     "question": "How many tickets with {priority} priority does the {project} project have?",
     "query": "SELECT COUNT(*) FROM ticket AS T1 JOIN project AS T2 ON T1.project_id = T2.project_id "
              "WHERE T1.priority = '{priority}' AND T2.proj_name = '{project}'",
     "slots": "SELECT DISTINCT T1.priority, T2.proj_name AS project FROM ticket AS T1 JOIN project AS T2 "
              "ON T1.project_id = T2.project_id"},
    {"category": "aggregate",
     "question": "What is the average salary of the employees working as {role}?",
     "query": "SELECT AVG(salary) FROM employee WHERE job_role = '{role}'",
     "slots": "SELECT DISTINCT job_role AS role FROM employee"},
    {"category": "aggregate",
     "question": "What is the total number of story points of the tickets with status {status}?",
     "query": "SELECT SUM(story_points) FROM ticket WHERE status = '{status}'",
     "slots": "SELECT DISTINCT status FROM ticket"},
    {"category": "group_by",
     "question": "How many tickets are there for each priority?",
     "query": "SELECT priority, COUNT(*) FROM ticket GROUP BY priority"},
    {"category": "group_by",
     "question": "What is the total budget of the projects for each platform?",
     "query": "SELECT platform, SUM(budget_usd) FROM project GROUP BY platform"},
    {"category": "order_limit",
     "question": "Which project has the largest budget?",
     "query": "SELECT proj_name FROM project ORDER BY budget_usd DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names and salaries of the {n} highest paid employees.",
     "query": "SELECT emp_name, salary FROM employee ORDER BY salary DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "nested",
     "question": "Which employees have no tickets assigned to them?",
     "query": "SELECT emp_name FROM employee WHERE emp_id NOT IN (SELECT assignee_id FROM ticket)"},
    {"category": "like",
     "question": "Which tickets are about the {component}? Give their summaries.",
     "query": "SELECT summary FROM ticket WHERE summary LIKE '%{component}'",
     "slots": [{"component": "payment flow"}, {"component": "search API"}, {"component": "dashboard"}]},
]

ENTITIES = {
    "project": {
        "one": "project", "many": "projects",
        "label": ("proj_name", "name", "names"),
        "text": {"platform": ("platform", "platforms"), "status": ("status", "statuses")},
        "number": {"start_yr": "start year", "budget_usd": "budget in dollars"},
    },
    "employee": {
        "one": "employee", "many": "employees",
        "label": ("emp_name", "name", "names"),
        "text": {"job_role": ("role", "roles"), "seniority": ("seniority level", "seniority levels")},
        "number": {"salary": "salary", "hire_yr": "hire year"},
    },
    "ticket": {
        "one": "ticket", "many": "tickets",
        "label": ("summary", "summary", "summaries"),
        "text": {"priority": ("priority", "priorities"), "status": ("status", "statuses")},
        "number": {"story_points": "number of story points"},
        "links": {"assignee_id": "assignee"},
    },
}
