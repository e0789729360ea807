"""Car rental: branches, their cars, customers and rentals."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers, person_names

DB_ID = "car_rental"

SCHEMA = """
CREATE TABLE branch (
    branch_id INTEGER PRIMARY KEY,
    branch_name TEXT NOT NULL,
    city TEXT NOT NULL,
    opened_yr INTEGER NOT NULL,
    num_spaces INTEGER NOT NULL
);
CREATE TABLE car (
    car_id INTEGER PRIMARY KEY,
    plate_no TEXT NOT NULL,
    make TEXT NOT NULL,
    model TEXT NOT NULL,
    car_class TEXT NOT NULL,
    model_yr INTEGER NOT NULL,
    daily_rate REAL NOT NULL,
    mileage_km INTEGER NOT NULL,
    branch_id INTEGER NOT NULL,
    FOREIGN KEY (branch_id) REFERENCES branch (branch_id)
);
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    cust_name TEXT NOT NULL,
    country TEXT NOT NULL,
    age INTEGER NOT NULL,
    member_level TEXT NOT NULL
);
CREATE TABLE rental (
    rental_id INTEGER PRIMARY KEY,
    car_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    pickup_date DATE NOT NULL,
    days_rented INTEGER NOT NULL,
    km_driven INTEGER NOT NULL,
    payment_method TEXT NOT NULL,
    amount_paid REAL NOT NULL,
    FOREIGN KEY (car_id) REFERENCES car (car_id),
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
);
"""

BRANCH_CITIES = ["Boston", "Chicago", "Denver", "Seattle", "Miami", "Austin"]
BRANCH_AREAS = ["Airport", "Downtown", "Central Station", "Harbor"]
MODELS = [  # make, model, class, base daily rate
    ("Toyota", "Corolla", "Compact", 42), ("Toyota", "RAV4", "SUV", 61), ("Ford", "Focus", "Compact", 39),
    ("Ford", "Explorer", "SUV", 72), ("Ford", "Transit", "Van", 88), ("Honda", "Civic", "Compact", 44),
    ("Honda", "CR-V", "SUV", 63), ("BMW", "5 Series", "Luxury", 118), ("Mercedes", "E-Class", "Luxury", 125),
    ("Kia", "Picanto", "Economy", 29), ("Hyundai", "i10", "Economy", 27), ("Volkswagen", "Golf", "Compact", 45),
    ("Tesla", "Model 3", "Electric", 95), ("Nissan", "Leaf", "Electric", 66), ("Chrysler", "Pacifica", "Van", 84),
]
COUNTRIES = ["United States", "Canada", "Mexico", "United Kingdom", "Germany", "Japan", "Brazil"]
LEVELS, LEVEL_WEIGHTS = ["Basic", "Silver", "Gold"], [55, 30, 15]
PAYMENTS, PAYMENT_WEIGHTS = ["Credit Card", "Debit Card", "Cash"], [65, 25, 10]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    places = rng.sample([(city, area) for city in BRANCH_CITIES for area in BRANCH_AREAS], 15)
    spaces = distinct_numbers(rng, 20, 260, 15)
    branch = [(bid, f"{city} {area}", city, rng.randint(1992, 2021), spaces[bid - 1])
              for bid, (city, area) in enumerate(places, start=1)]

    mileage = distinct_numbers(rng, 2000, 160000, 75)
    car, plates, rates = [], [], []
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    while len(car) < 75:
        plate = "".join(rng.choice(letters) for _ in range(3)) + "-" + str(rng.randint(1000, 9999))
        if plate in plates:
            continue
        make, model, car_class, base = rng.choice(MODELS)
        year = rng.randint(2016, 2024)
        rate = round(base * (1 + (year - 2016) * 0.03) + rng.randint(0, 99) / 100, 2)
        while rate in rates:  # distinct rates: "the most expensive car" has one answer
            rate = round(rate + 0.01, 2)
        plates.append(plate)
        rates.append(rate)
        car.append((len(car) + 1, plate, make, model, car_class, year, rate, mileage[len(car)],
                    rng.randint(1, len(branch))))

    names = person_names(rng, 50)
    customer = [(cid, names[cid - 1], rng.choices(COUNTRIES, [40, 12, 10, 10, 10, 9, 9])[0], rng.randint(19, 78),
                 rng.choices(LEVELS, LEVEL_WEIGHTS)[0]) for cid in range(1, 51)]

    rental = []
    for rid in range(1, 121):
        cid = rng.randint(1, len(car))
        days = rng.choice([1, 2, 2, 3, 3, 4, 5, 7, 7, 10, 14])
        amount = round(days * car[cid - 1][6] * rng.choice([1.0, 1.0, 1.1, 1.25]), 2)
        rental.append((rid, cid, rng.randint(1, len(customer)), date_between(rng, "2023-01-01", "2024-09-30"),
                       days, days * rng.randint(30, 260), rng.choices(PAYMENTS, PAYMENT_WEIGHTS)[0], amount))
    return {"branch": branch, "car": car, "customer": customer, "rental": rental}


CAR_CLASS = "SELECT DISTINCT car_class AS cls FROM car"
CUSTOMER = "SELECT cust_name AS customer FROM customer"

TEMPLATES = [
    {"category": "where",
     "question": "What are the plate numbers of the cars in the {cls} class?",
     "query": "SELECT plate_no FROM car WHERE car_class = '{cls}'",
     "slots": CAR_CLASS},
    {"category": "where",
     "question": "List the plate numbers and models of the {make} cars from model year {year}.",
     "query": "SELECT plate_no, model FROM car WHERE make = '{make}' AND model_yr = {year}",
     "slots": "SELECT DISTINCT make, model_yr AS year FROM car"},
    {"category": "where",
     "question": "What are the names of the customers from {country} who are older than {age}?",
     "query": "SELECT cust_name FROM customer WHERE country = '{country}' AND age > {age}",
     "slots": "SELECT DISTINCT country, 50 AS age FROM customer"},
    {"category": "join",
     "question": "Which cars are kept at the {branch} branch? Give their plate numbers.",
     "query": "SELECT T1.plate_no FROM car AS T1 JOIN branch AS T2 ON T1.branch_id = T2.branch_id "
              "WHERE T2.branch_name = '{branch}'",
     "slots": "SELECT branch_name AS branch FROM branch"},
    {"category": "join",
     "question": "How many rentals has {customer} made?",
     "query": "SELECT COUNT(*) FROM rental AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id "
              "WHERE T2.cust_name = '{customer}'",
     "slots": CUSTOMER},
    {"category": "join",
     "question": "What is the total amount paid for the rentals of the car with plate number {plate}?",
     "query": "SELECT SUM(T1.amount_paid) FROM rental AS T1 JOIN car AS T2 ON T1.car_id = T2.car_id "
              "WHERE T2.plate_no = '{plate}'",
     "slots": "SELECT plate_no AS plate FROM car"},
    {"category": "join",
     "question": "Which customers paid for a rental by {method}? Give their names.",
     "query": "SELECT DISTINCT T2.cust_name FROM rental AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id "
              "WHERE T1.payment_method = '{method}'",
     "slots": "SELECT DISTINCT payment_method AS method FROM rental"},
    {"category": "aggregate",
     "question": "What is the average daily rate of the {cls} cars?",
     "query": "SELECT AVG(daily_rate) FROM car WHERE car_class = '{cls}'",
     "slots": CAR_CLASS},
    {"category": "aggregate",
     "question": "How many branches are there in {city}?",
     "query": "SELECT COUNT(*) FROM branch WHERE city = '{city}'",
     "slots": "SELECT DISTINCT city FROM branch"},
    {"category": "group_by",
     "question": "How many cars are there in each class?",
     "query": "SELECT car_class, COUNT(*) FROM car GROUP BY car_class"},
    {"category": "group_by",
     "question": "What is the total distance in kilometers driven in rentals for each car make?",
     "query": "SELECT T2.make, SUM(T1.km_driven) FROM rental AS T1 JOIN car AS T2 ON T1.car_id = T2.car_id "
              "GROUP BY T2.make"},
    {"category": "order_limit",
     "question": "Which car has the highest daily rate? Give its plate number and model.",
     "query": "SELECT plate_no, model FROM car ORDER BY daily_rate DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names of the {n} branches with the most parking spaces.",
     "query": "SELECT branch_name FROM branch ORDER BY num_spaces DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
]

ENTITIES = {
    "branch": {
        "one": "branch", "many": "branches",
        "label": ("branch_name", "name", "names"),
        "text": {"city": ("city", "cities")},
        "number": {"opened_yr": "opening year", "num_spaces": "number of parking spaces"},
    },
    "car": {
        "one": "car", "many": "cars",
        "label": ("plate_no", "plate number", "plate numbers"),
        "text": {"make": ("make", "makes"), "car_class": ("car class", "car classes")},
        "number": {"mileage_km": "mileage in kilometers", "daily_rate": "daily rate", "model_yr": "model year"},
    },
    "customer": {
        "one": "customer", "many": "customers",
        "label": ("cust_name", "name", "names"),
        "text": {"country": ("country", "countries"), "member_level": ("membership level", "membership levels")},
        "number": {"age": "age"},
    },
    "rental": {
        "one": "rental", "many": "rentals",
        "label": None,
        "text": {"payment_method": ("payment method", "payment methods")},
        "number": {"days_rented": "number of days rented", "km_driven": "kilometers driven",
                   "amount_paid": "amount paid"},
    },
}
