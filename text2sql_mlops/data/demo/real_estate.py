"""Real estate: agents, the properties they list and the sales of properties."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers, person_names

DB_ID = "real_estate"

SCHEMA = """
CREATE TABLE agent (
    agent_id INTEGER PRIMARY KEY,
    agent_name TEXT NOT NULL,
    agency TEXT NOT NULL,
    yrs_licensed INTEGER NOT NULL,
    commission_pct REAL NOT NULL
);
CREATE TABLE property (
    property_id INTEGER PRIMARY KEY,
    address TEXT NOT NULL,
    neighborhood TEXT NOT NULL,
    prop_type TEXT NOT NULL,
    num_bedrooms INTEGER NOT NULL,
    sq_ft INTEGER NOT NULL,
    yr_built INTEGER NOT NULL,
    list_price REAL NOT NULL,
    agent_id INTEGER NOT NULL,
    FOREIGN KEY (agent_id) REFERENCES agent (agent_id)
);
CREATE TABLE sale (
    sale_id INTEGER PRIMARY KEY,
    property_id INTEGER NOT NULL,
    buyer_name TEXT NOT NULL,
    sale_date DATE NOT NULL,
    financing TEXT NOT NULL,
    sale_price REAL NOT NULL,
    FOREIGN KEY (property_id) REFERENCES property (property_id)
);
"""

# The agencies are fictional.
AGENCIES = ["Keystone Realty", "Harborview Homes", "Northgate Properties", "Bluebell Estates"]
NEIGHBORHOODS = {  # neighborhood: price per square foot
    "Old Town": 410, "Riverside": 380, "Hillcrest": 450, "Westfield": 290, "Maple Grove": 330,
    "Harbor District": 520, "University Park": 360, "Eastgate": 260,
}
TYPES = {  # property type: (bedrooms, square feet range)
    "Apartment": ([1, 1, 2, 2, 3], (450, 1300)), "Condo": ([1, 2, 2, 3], (600, 1600)),
    "Townhouse": ([2, 3, 3, 4], (1100, 2200)), "House": ([2, 3, 3, 4, 4, 5, 6], (1300, 4200)),
}
STREETS = ["Oak", "Maple", "Cedar", "Elm", "Pine", "Birch", "Willow", "Chestnut", "Walnut", "Spruce", "Aspen",
           "Hawthorn"]
SUFFIXES = ["Street", "Avenue", "Lane", "Road", "Drive", "Court"]
FINANCING, FINANCING_WEIGHTS = ["Mortgage", "Cash", "Bridge Loan"], [70, 22, 8]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    names = person_names(rng, 15 + 45)
    licensed = distinct_numbers(rng, 1, 38, 15)
    agent = [(aid, names[aid - 1], AGENCIES[(aid - 1) % len(AGENCIES)], licensed[aid - 1],
              round(rng.uniform(1.5, 3.5), 2)) for aid in range(1, 16)]

    addresses: list[str] = []
    while len(addresses) < 90:
        address = f"{rng.randint(2, 980)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
        if address not in addresses:
            addresses.append(address)
    property_, sizes, prices = [], [], []
    for pid, address in enumerate(addresses, start=1):
        neighborhood = rng.choice(list(NEIGHBORHOODS))
        prop_type = rng.choices(list(TYPES), [30, 18, 20, 32])[0]
        bedrooms, (low, high) = TYPES[prop_type]
        size = rng.randint(low, high)
        while size in sizes:  # distinct sizes and prices: superlatives have one answer
            size += 1
        sizes.append(size)
        price = round(size * NEIGHBORHOODS[neighborhood] * rng.uniform(0.85, 1.2), -3)
        while price in prices:
            price += 1000.0
        prices.append(price)
        property_.append((pid, address, neighborhood, prop_type, rng.choice(bedrooms), size,
                          rng.randint(1905, 2023), price, rng.randint(1, len(agent))))

    sold = sorted(rng.sample(range(1, len(property_) + 1), 45))
    sale = []
    for sid, pid in enumerate(sold, start=1):
        sale.append((sid, pid, names[14 + sid], date_between(rng, "2022-01-01", "2024-06-30"),
                     rng.choices(FINANCING, FINANCING_WEIGHTS)[0],
                     round(property_[pid - 1][7] * rng.uniform(0.92, 1.08), -2)))
    return {"agent": agent, "property": property_, "sale": sale}


NEIGHBORHOOD = "SELECT DISTINCT neighborhood FROM property"
AGENCY = "SELECT DISTINCT agency FROM agent"

TEMPLATES = [
    {"category": "where",
     "question": "What are the addresses of the properties in {neighborhood}?",
     "query": "SELECT address FROM property WHERE neighborhood = '{neighborhood}'",
     "slots": NEIGHBORHOOD},
    {"category": "where",
     "question": "Which properties have more than {n} bedrooms? Give their addresses and list prices.",
     "query": "SELECT address, list_price FROM property WHERE num_bedrooms > {n}",
     "slots": [{"n": 3}, {"n": 4}, {"n": 5}]},
    {"category": "where",
     "question": "List the addresses of the properties of type {ptype} built before {year}.",
     "query": "SELECT address FROM property WHERE prop_type = '{ptype}' AND yr_built < {year}",
     "slots": [{"ptype": "House", "year": 1950}, {"ptype": "Townhouse", "year": 1980},
               {"ptype": "Apartment", "year": 1960}, {"ptype": "Condo", "year": 2000}]},
    {"category": "join",
     "question": "What are the addresses of the properties listed by {agent}?",
     "query": "SELECT T1.address FROM property AS T1 JOIN agent AS T2 ON T1.agent_id = T2.agent_id "
              "WHERE T2.agent_name = '{agent}'",
     "slots": "SELECT agent_name AS agent FROM agent"},
    {"category": "join",
     "question": "How many properties are listed by agents of {agency}?",
     "query": "SELECT COUNT(*) FROM property AS T1 JOIN agent AS T2 ON T1.agent_id = T2.agent_id "
              "WHERE T2.agency = '{agency}'",
     "slots": AGENCY},
    {"category": "join",
     "question": "Who bought the property at {address}, and for what price?",
     "query": "SELECT T1.buyer_name, T1.sale_price FROM sale AS T1 JOIN property AS T2 "
              "ON T1.property_id = T2.property_id WHERE T2.address = '{address}'",
     "slots": "SELECT T2.address FROM sale AS T1 JOIN property AS T2 ON T1.property_id = T2.property_id"},
    {"category": "multi_join",
     "question": "Which agents have sold a property in {neighborhood}?",
     "query": "SELECT DISTINCT T3.agent_name FROM sale AS T1 JOIN property AS T2 ON T1.property_id = T2.property_id "
              "JOIN agent AS T3 ON T2.agent_id = T3.agent_id WHERE T2.neighborhood = '{neighborhood}'",
     "slots": NEIGHBORHOOD},
    {"category": "aggregate",
     "question": "What is the average list price of the properties in {neighborhood}?",
     "query": "SELECT AVG(list_price) FROM property WHERE neighborhood = '{neighborhood}'",
     "slots": NEIGHBORHOOD},
    {"category": "aggregate",
     "question": "What is the average commission percentage of the agents working for {agency}?",
     "query": "SELECT AVG(commission_pct) FROM agent WHERE agency = '{agency}'",
     "slots": AGENCY},
    {"category": "group_by",
     "question": "How many properties of each type are there?",
     "query": "SELECT prop_type, COUNT(*) FROM property GROUP BY prop_type"},
    {"category": "group_by",
     "question": "What is the average sale price for each type of financing?",
     "query": "SELECT financing, AVG(sale_price) FROM sale GROUP BY financing"},
    {"category": "order_limit",
     "question": "What is the address of the largest property in square feet?",
     "query": "SELECT address FROM property ORDER BY sq_ft DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names of the {n} agents who have been licensed the longest.",
     "query": "SELECT agent_name FROM agent ORDER BY yrs_licensed DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
]

ENTITIES = {
    "agent": {
        "one": "agent", "many": "agents",
        "label": ("agent_name", "name", "names"),
        "text": {"agency": ("agency", "agencies")},
        "number": {"yrs_licensed": "years licensed", "commission_pct": "commission percentage"},
    },
    "property": {
        "one": "property", "many": "properties",
        "label": ("address", "address", "addresses"),
        "text": {"neighborhood": ("neighborhood", "neighborhoods"), "prop_type": ("property type", "property types")},
        "number": {"num_bedrooms": "number of bedrooms", "sq_ft": "floor area in square feet",
                   "yr_built": "year built", "list_price": "list price"},
        "links": {"agent_id": "listing agent"},
    },
    "sale": {
        "one": "sale", "many": "sales",
        "label": ("buyer_name", "buyer name", "buyer names"),
        "text": {"financing": ("financing type", "financing types")},
        "number": {"sale_price": "sale price"},
    },
}
