"""Public library: branches, members, catalog items and loans."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers, person_names

DB_ID = "public_library"

SCHEMA = """
CREATE TABLE library_branch (
    branch_id INTEGER PRIMARY KEY,
    branch_name TEXT NOT NULL,
    district TEXT NOT NULL,
    opened_yr INTEGER NOT NULL,
    num_seats INTEGER NOT NULL
);
CREATE TABLE member (
    member_id INTEGER PRIMARY KEY,
    member_name TEXT NOT NULL,
    membership_type TEXT NOT NULL,
    join_yr INTEGER NOT NULL,
    home_branch_id INTEGER NOT NULL,
    FOREIGN KEY (home_branch_id) REFERENCES library_branch (branch_id)
);
CREATE TABLE catalog_item (
    item_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    item_format TEXT NOT NULL,
    subject TEXT NOT NULL,
    pub_yr INTEGER NOT NULL,
    replacement_cost REAL NOT NULL,
    branch_id INTEGER NOT NULL,
    FOREIGN KEY (branch_id) REFERENCES library_branch (branch_id)
);
CREATE TABLE loan (
    loan_id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    loan_date DATE NOT NULL,
    days_kept INTEGER NOT NULL,
    checkout_method TEXT NOT NULL,
    late_fee REAL NOT NULL,
    FOREIGN KEY (item_id) REFERENCES catalog_item (item_id),
    FOREIGN KEY (member_id) REFERENCES member (member_id)
);
"""

BRANCHES = [  # name, district
    ("Central Library", "Downtown"), ("Riverside Branch", "Riverside"), ("Oak Park Branch", "Northside"),
    ("Harbor Branch", "Riverside"), ("Hilltop Branch", "Northside"), ("Market Square Branch", "Downtown"),
    ("Greenwood Branch", "Westside"), ("Lakeview Branch", "Westside"), ("Station Road Branch", "Eastside"),
    ("Millbrook Branch", "Eastside"), ("Sunnyvale Branch", "Southside"), ("Old Mill Branch", "Southside"),
    ("Cedar Grove Branch", "Westside"), ("Bridge Street Branch", "Eastside"), ("Parkside Branch", "Northside"),
]
# The titles are fictional.
TITLES = {
    "Fiction": ["The Lighthouse Keeper", "Salt and Stone", "A House of Many Doors", "The Night Garden",
                "Letters from the Coast", "The Glass Orchard", "Winter Crossing", "The Last Ferry",
                "Paper Moons", "The Quiet Harbor", "Seven Bridges"],
    "History": ["Empires of the Steppe", "The Silk Roads Revisited", "A Short History of Bread",
                "The Age of Canals", "Kings and Couriers", "The Railway Century", "Cities of the Delta",
                "Maps That Changed the World", "The Printing Revolution", "Harbors and Empires"],
    "Science": ["The Hidden Life of Soil", "Stars in Your Pocket", "The Curious Atom", "How Rivers Think",
                "A Field Guide to Clouds", "The Restless Planet", "Inside the Cell", "Numbers Everywhere",
                "The Weather Machine", "Light and Its Secrets"],
    "Travel": ["Walking the Alps", "Slow Trains of Asia", "The Island Guide", "Coastal Roads",
               "A Year in the Desert", "Rivers of Europe", "Mountain Villages", "Cities by Bicycle",
               "The Northern Lights Trail"],
    "Cooking": ["Soups for Every Season", "The Bread Book", "One Pot Dinners", "Spice Market Kitchen",
                "Baking with Grains", "The Vegetable Table", "Street Food at Home", "Preserves and Pickles",
                "Simple Suppers"],
    "Children": ["The Brave Little Owl", "Counting Ducks", "Milo and the Moon", "The Sleepy Dragon",
                 "Rainy Day Adventures", "A Whale of a Time", "The Snail Race", "Nora Builds a Boat",
                 "Five Hungry Foxes", "The Lost Mitten"],
}
FORMATS = {"Book": 24.0, "Audiobook": 35.0, "DVD": 18.0, "E-book": 12.0}  # base replacement cost
MEMBERSHIPS, MEMBERSHIP_WEIGHTS = ["Adult", "Student", "Senior", "Child"], [45, 20, 20, 15]
CHECKOUTS, CHECKOUT_WEIGHTS = ["Front Desk", "Self Checkout", "Online Reservation"], [40, 45, 15]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    seats = distinct_numbers(rng, 12, 240, len(BRANCHES))
    opened = distinct_numbers(rng, 1905, 2019, len(BRANCHES))
    library_branch = [(bid, name, district, opened[bid - 1], seats[bid - 1])
                      for bid, (name, district) in enumerate(BRANCHES, start=1)]

    names = person_names(rng, 70)
    member = [(mid, names[mid - 1], rng.choices(MEMBERSHIPS, MEMBERSHIP_WEIGHTS)[0], rng.randint(2008, 2024),
               rng.randint(1, len(library_branch))) for mid in range(1, 71)]

    titles = [(title, subject) for subject, subject_titles in TITLES.items() for title in subject_titles]
    rng.shuffle(titles)
    years = distinct_numbers(rng, 1960, 2024, len(titles))  # distinct: "the oldest item" has one answer
    catalog_item = []
    for iid, (title, subject) in enumerate(titles, start=1):
        fmt = rng.choices(list(FORMATS), [60, 15, 15, 10])[0]
        catalog_item.append((iid, title, fmt, subject, years[iid - 1],
                             round(FORMATS[fmt] + rng.randint(0, 1600) / 100, 2), rng.randint(1, len(library_branch))))

    loan = []
    for lid in range(1, 121):
        days = rng.choice([3, 7, 10, 14, 14, 18, 21, 21, 24, 28, 35])
        loan.append((lid, rng.randint(1, len(catalog_item)), rng.randint(1, len(member)),
                     date_between(rng, "2024-01-01", "2024-09-30"), days,
                     rng.choices(CHECKOUTS, CHECKOUT_WEIGHTS)[0], max(0, days - 21) * 0.25))
    return {"library_branch": library_branch, "member": member, "catalog_item": catalog_item, "loan": loan}


BRANCH = "SELECT branch_name AS branch FROM library_branch"
MEMBER = "SELECT member_name AS member FROM member"
FORMAT = "SELECT DISTINCT item_format AS fmt FROM catalog_item"

TEMPLATES = [
    {"category": "where",
     "question": "What are the titles of the {subject} items published after {year}?",
     "query": "SELECT title FROM catalog_item WHERE subject = '{subject}' AND pub_yr > {year}",
     "slots": "SELECT DISTINCT subject, 2000 AS year FROM catalog_item"},
    {"category": "where",
     "question": "Which members have the {mtype} membership type? Give their names.",
     "query": "SELECT member_name FROM member WHERE membership_type = '{mtype}'",
     "slots": "SELECT DISTINCT membership_type AS mtype FROM member"},
    {"category": "where",
     "question": "What are the names of the library branches in the {district} district?",
     "query": "SELECT branch_name FROM library_branch WHERE district = '{district}'",
     "slots": "SELECT DISTINCT district FROM library_branch"},
    {"category": "join",
     "question": "Which members have {branch} as their home branch?",
     "query": "SELECT T1.member_name FROM member AS T1 JOIN library_branch AS T2 ON T1.home_branch_id = T2.branch_id "
              "WHERE T2.branch_name = '{branch}'",
     "slots": BRANCH},
    {"category": "join",
     "question": "What are the titles of the items held at {branch}?",
     "query": "SELECT T1.title FROM catalog_item AS T1 JOIN library_branch AS T2 ON T1.branch_id = T2.branch_id "
              "WHERE T2.branch_name = '{branch}'",
     "slots": BRANCH},
    {"category": "join",
     "question": "How many times was {title} borrowed?",
     "query": "SELECT COUNT(*) FROM loan AS T1 JOIN catalog_item AS T2 ON T1.item_id = T2.item_id "
              "WHERE T2.title = '{title}'",
     "slots": "SELECT title FROM catalog_item"},
    {"category": "multi_join",
     "question": "What are the titles of the items borrowed by {member}?",
     "query": "SELECT T3.title FROM loan AS T1 JOIN member AS T2 ON T1.member_id = T2.member_id "
              "JOIN catalog_item AS T3 ON T1.item_id = T3.item_id WHERE T2.member_name = '{member}'",
     "slots": MEMBER},
    {"category": "aggregate",
     "question": "What is the total late fee paid by {member}?",
     "query": "SELECT SUM(T1.late_fee) FROM loan AS T1 JOIN member AS T2 ON T1.member_id = T2.member_id "
              "WHERE T2.member_name = '{member}'",
     "slots": MEMBER},
    {"category": "aggregate",
     "question": "What is the average replacement cost of the items in {fmt} format?",
     "query": "SELECT AVG(replacement_cost) FROM catalog_item WHERE item_format = '{fmt}'",
     "slots": FORMAT},
    {"category": "group_by",
     "question": "How many members are there of each membership type?",
     "query": "SELECT membership_type, COUNT(*) FROM member GROUP BY membership_type"},
    {"category": "group_by",
     "question": "How many loans were made with each checkout method?",
     "query": "SELECT checkout_method, COUNT(*) FROM loan GROUP BY checkout_method"},
    {"category": "order_limit",
     "question": "Which library branch has the most seats?",
     "query": "SELECT branch_name FROM library_branch ORDER BY num_seats DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "What are the titles and publication years of the {n} oldest items?",
     "query": "SELECT title, pub_yr FROM catalog_item ORDER BY pub_yr LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
]

ENTITIES = {
    "library_branch": {
        "one": "branch", "many": "branches",
        "label": ("branch_name", "name", "names"),
        "text": {"district": ("district", "districts")},
        "number": {"opened_yr": "opening year", "num_seats": "number of seats"},
    },
    "member": {
        "one": "member", "many": "members",
        "label": ("member_name", "name", "names"),
        "text": {"membership_type": ("membership type", "membership types")},
        "number": {"join_yr": "year joined"},
        "links": {"home_branch_id": "home branch"},
    },
    "catalog_item": {
        "one": "item", "many": "items",
        "label": ("title", "title", "titles"),
        "text": {"item_format": ("format", "formats"), "subject": ("subject", "subjects")},
        "number": {"replacement_cost": "replacement cost", "pub_yr": "publication year"},
    },
    "loan": {
        "one": "loan", "many": "loans",
        "label": None,
        "text": {"checkout_method": ("checkout method", "checkout methods")},
        "number": {"days_kept": "number of days kept", "late_fee": "late fee"},
    },
}
