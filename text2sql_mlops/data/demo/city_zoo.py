"""City zoo: enclosures, keepers and the animals they look after."""

from __future__ import annotations

import random

from .pools import distinct_numbers, person_names

DB_ID = "city_zoo"

SCHEMA = """
CREATE TABLE enclosure (
    enclosure_id INTEGER PRIMARY KEY,
    enc_name TEXT NOT NULL,
    habitat TEXT NOT NULL,
    size_sqm INTEGER NOT NULL,
    built_yr INTEGER NOT NULL
);
CREATE TABLE keeper (
    keeper_id INTEGER PRIMARY KEY,
    keeper_name TEXT NOT NULL,
    shift TEXT NOT NULL,
    yrs_service INTEGER NOT NULL,
    hourly_wage REAL NOT NULL
);
CREATE TABLE animal (
    animal_id INTEGER PRIMARY KEY,
    nickname TEXT NOT NULL,
    species TEXT NOT NULL,
    diet TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_yr INTEGER NOT NULL,
    weight_kg REAL NOT NULL,
    enclosure_id INTEGER NOT NULL,
    keeper_id INTEGER NOT NULL,
    FOREIGN KEY (enclosure_id) REFERENCES enclosure (enclosure_id),
    FOREIGN KEY (keeper_id) REFERENCES keeper (keeper_id)
);
"""

ENCLOSURES = [  # name, habitat
    ("Great Savanna", "Savanna"), ("Lion Rock", "Savanna"), ("Elephant Plains", "Savanna"),
    ("Giraffe Heights", "Savanna"), ("Desert Dunes", "Desert"), ("Meerkat Mound", "Desert"),
    ("Polar Point", "Arctic"), ("Ice Cave", "Arctic"), ("Penguin Bay", "Aquatic"), ("Sea Lion Cove", "Aquatic"),
    ("Jungle Dome", "Rainforest"), ("Amazon House", "Rainforest"), ("Orangutan Canopy", "Rainforest"),
    ("Himalaya Ridge", "Mountain"), ("Snowy Peaks", "Mountain"),
]
SPECIES = [  # species, diet, weight range in kg, enclosures, how many animals
    ("Lion", "Carnivore", (120, 250), ["Lion Rock"], 5),
    ("Giraffe", "Herbivore", (700, 1200), ["Giraffe Heights", "Great Savanna"], 6),
    ("Zebra", "Herbivore", (200, 400), ["Great Savanna"], 8),
    ("African Elephant", "Herbivore", (2500, 6000), ["Elephant Plains"], 4),
    ("Meerkat", "Omnivore", (0.6, 1.0), ["Meerkat Mound", "Desert Dunes"], 12),
    ("Polar Bear", "Carnivore", (300, 700), ["Polar Point", "Ice Cave"], 3),
    ("Gentoo Penguin", "Carnivore", (4.5, 8.5), ["Penguin Bay"], 14),
    ("Sea Lion", "Carnivore", (80, 350), ["Sea Lion Cove"], 6),
    ("Orangutan", "Omnivore", (35, 90), ["Orangutan Canopy"], 5),
    ("Capybara", "Herbivore", (35, 65), ["Amazon House", "Jungle Dome"], 7),
    ("Snow Leopard", "Carnivore", (25, 55), ["Snowy Peaks"], 3),
    ("Red Panda", "Herbivore", (3, 6), ["Himalaya Ridge"], 5),
]
NICKNAMES = [
    "Amara", "Bongo", "Coco", "Dotty", "Echo", "Fig", "Ginger", "Hazel", "Indigo", "Juno", "Kiki", "Luna",
    "Mango", "Nala", "Olive", "Pepper", "Quincy", "Rolo", "Sunny", "Tango", "Uma", "Violet", "Wally", "Xena",
    "Yoshi", "Ziggy", "Apollo", "Biscuit", "Clover", "Dusty", "Ember", "Flint", "Goldie", "Hugo", "Iris",
    "Jasper", "Kona", "Lulu", "Maple", "Nemo", "Oscar", "Poppy", "Rocky", "Sable", "Thor", "Willow", "Zara",
    "Atlas", "Blossom", "Cinder", "Dune", "Fern", "Gus", "Honey", "Ivy", "Koda", "Lotus", "Milo", "Nova",
    "Opal", "Pebble", "Rumi", "Sage", "Teddy", "Waffles", "Yuki", "Zeus", "Acorn", "Bramble", "Comet",
    "Duchess", "Fable", "Gizmo", "Hopper", "Jelly", "Kestrel", "Lemon", "Marble", "Nutmeg", "Pixel",
]
SHIFTS = ["Morning", "Day", "Evening"]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    sizes = distinct_numbers(rng, 150, 9000, len(ENCLOSURES))
    enclosure = [(eid, name, habitat, sizes[eid - 1], rng.randint(1968, 2022))
                 for eid, (name, habitat) in enumerate(ENCLOSURES, start=1)]
    enclosure_id = {name: eid for eid, (name, _) in enumerate(ENCLOSURES, start=1)}

    names = person_names(rng, 16)
    service = distinct_numbers(rng, 1, 35, 16)
    wages = distinct_numbers(rng, 1750, 3400, 16, scale=100)
    keeper = [(kid, names[kid - 1], SHIFTS[(kid - 1) % 3], service[kid - 1], wages[kid - 1])
              for kid in range(1, 17)]

    nicknames = rng.sample(NICKNAMES, sum(spec[4] for spec in SPECIES))
    animal = []
    for species, diet, (low, high), homes, count in SPECIES:
        carers = rng.sample(range(1, len(keeper) + 1), 2)  # two keepers per species
        for _ in range(count):
            weight = round(rng.uniform(low, high), 2 if high < 10 else 1)
            animal.append((len(animal) + 1, nicknames[len(animal)], species, diet, rng.choice(["Male", "Female"]),
                           rng.randint(2004, 2023), weight, enclosure_id[rng.choice(homes)], rng.choice(carers)))
    return {"enclosure": enclosure, "keeper": keeper, "animal": animal}


SPECIES_SLOT = "SELECT DISTINCT species FROM animal"
HABITAT = "SELECT DISTINCT habitat FROM enclosure"

TEMPLATES = [
    {"category": "where",
     "question": "Which animals belong to the species {species}? Give their names.",
     "query": "SELECT nickname FROM animal WHERE species = '{species}'",
     "slots": SPECIES_SLOT},
    {"category": "where",
     "question": "List the names and weights of the {diet} animals born after {year}.",
     "query": "SELECT nickname, weight_kg FROM animal WHERE diet = '{diet}' AND birth_yr > {year}",
     "slots": "SELECT DISTINCT diet, 2018 AS year FROM animal"},
    {"category": "where",
     "question": "Which keepers work the {shift} shift?",
     "query": "SELECT keeper_name FROM keeper WHERE shift = '{shift}'",
     "slots": "SELECT DISTINCT shift FROM keeper"},
    {"category": "join",
     "question": "What are the names of the animals living in {enclosure}?",
     "query": "SELECT T1.nickname FROM animal AS T1 JOIN enclosure AS T2 ON T1.enclosure_id = T2.enclosure_id "
              "WHERE T2.enc_name = '{enclosure}'",
     "slots": "SELECT enc_name AS enclosure FROM enclosure"},
    {"category": "join",
     "question": "Which animals does {keeper} look after? Give their names and species.",
     "query": "SELECT T1.nickname, T1.species FROM animal AS T1 JOIN keeper AS T2 ON T1.keeper_id = T2.keeper_id "
              "WHERE T2.keeper_name = '{keeper}'",
     "slots": "SELECT keeper_name AS keeper FROM keeper"},
    {"category": "join",
     "question": "How many animals live in enclosures whose habitat is {habitat}?",
     "query": "SELECT COUNT(*) FROM animal AS T1 JOIN enclosure AS T2 ON T1.enclosure_id = T2.enclosure_id "
              "WHERE T2.habitat = '{habitat}'",
     "slots": HABITAT},
    {"category": "multi_join",
     "question": "Which keepers look after animals in {enclosure}?",
     "query": "SELECT DISTINCT T3.keeper_name FROM animal AS T1 JOIN enclosure AS T2 "
              "ON T1.enclosure_id = T2.enclosure_id JOIN keeper AS T3 ON T1.keeper_id = T3.keeper_id "
              "WHERE T2.enc_name = '{enclosure}'",
     "slots": "SELECT enc_name AS enclosure FROM enclosure"},
    {"category": "aggregate",
     "question": "What is the average weight in kilograms of the animals of species {species}?",
     "query": "SELECT AVG(weight_kg) FROM animal WHERE species = '{species}'",
     "slots": SPECIES_SLOT},
    {"category": "aggregate",
     "question": "How many enclosures have the habitat {habitat}?",
     "query": "SELECT COUNT(*) FROM enclosure WHERE habitat = '{habitat}'",
     "slots": HABITAT},
    {"category": "group_by",
     "question": "How many animals of each species does the zoo have?",
     "query": "SELECT species, COUNT(*) FROM animal GROUP BY species"},
    {"category": "group_by",
     "question": "What is the average hourly wage of the keepers on each shift?",
     "query": "SELECT shift, AVG(hourly_wage) FROM keeper GROUP BY shift"},
    {"category": "order_limit",
     "question": "Which animal is the heaviest? Give its name and species.",
     "query": "SELECT nickname, species FROM animal ORDER BY weight_kg DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names of the {n} largest enclosures.",
     "query": "SELECT enc_name FROM enclosure ORDER BY size_sqm DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "distinct",
     "question": "Which different species live in enclosures whose habitat is {habitat}?",
     "query": "SELECT DISTINCT T1.species FROM animal AS T1 JOIN enclosure AS T2 "
              "ON T1.enclosure_id = T2.enclosure_id WHERE T2.habitat = '{habitat}'",
     "slots": HABITAT},
]

ENTITIES = {
    "enclosure": {
        "one": "enclosure", "many": "enclosures",
        "label": ("enc_name", "name", "names"),
        "text": {"habitat": ("habitat", "habitats")},
        "number": {"size_sqm": "size in square meters", "built_yr": "year built"},
    },
    "keeper": {
        "one": "keeper", "many": "keepers",
        "label": ("keeper_name", "name", "names"),
        "text": {"shift": ("shift", "shifts")},
        "number": {"yrs_service": "years of service", "hourly_wage": "hourly wage"},
    },
    "animal": {
        "one": "animal", "many": "animals",
        "label": ("nickname", "name", "names"),
        "text": {"species": ("species", "species"), "diet": ("diet", "diets"), "sex": ("sex", "sexes")},
        "number": {"weight_kg": "weight in kilograms", "birth_yr": "birth year"},
    },
}
