"""Music festival: festivals, their stages, artists and the performances (dev)."""

from __future__ import annotations

import datetime
import random

from .pools import distinct_numbers, person_names

DB_ID = "music_festival"

SCHEMA = """
CREATE TABLE festival (
    festival_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    start_date DATE NOT NULL,
    ticket_price REAL NOT NULL
);
CREATE TABLE stage (
    stage_id INTEGER PRIMARY KEY,
    festival_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    FOREIGN KEY (festival_id) REFERENCES festival (festival_id)
);
CREATE TABLE artist (
    artist_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    genre TEXT NOT NULL,
    country TEXT NOT NULL,
    formed_year INTEGER NOT NULL
);
CREATE TABLE performance (
    performance_id INTEGER PRIMARY KEY,
    artist_id INTEGER NOT NULL,
    stage_id INTEGER NOT NULL,
    performance_date DATE NOT NULL,
    start_time TEXT NOT NULL,
    duration_min INTEGER NOT NULL,
    attendance INTEGER NOT NULL,
    FOREIGN KEY (artist_id) REFERENCES artist (artist_id),
    FOREIGN KEY (stage_id) REFERENCES stage (stage_id)
);
"""

FESTIVALS = [  # name, city, country, start date (three days), genres it books most
    ("Northern Lights Festival", "Oslo", "Norway", "2023-06-16", ["Indie", "Electronic", "Rock"]),
    ("Sunset Sound", "Barcelona", "Spain", "2023-07-07", ["Pop", "Electronic", "Hip Hop"]),
    ("Riverbank Jazz Days", "New Orleans", "United States", "2023-04-21", ["Jazz", "Folk"]),
    ("Electric Meadow", "Berlin", "Germany", "2024-08-02", ["Electronic", "Hip Hop", "Pop"]),
    ("Highland Folk Gathering", "Edinburgh", "United Kingdom", "2024-08-16", ["Folk", "Indie", "Rock"]),
    ("Pacific Waves", "Sydney", "Australia", "2024-01-12", ["Rock", "Metal", "Pop"]),
]
STAGE_NAMES = ["Main Stage", "Forest Stage", "Tent Stage", "Lakeside Stage"]
GENRES = ["Rock", "Pop", "Electronic", "Jazz", "Hip Hop", "Folk", "Indie", "Metal"]
COUNTRIES = ["United States", "United Kingdom", "Sweden", "Germany", "France", "Australia", "Brazil", "Japan",
             "Nigeria", "Canada"]
BAND_ADJECTIVES = ["Velvet", "Electric", "Midnight", "Golden", "Neon", "Paper", "Silver", "Wandering", "Crystal",
                   "Hollow", "Lunar", "Rusty"]
BAND_NOUNS = ["Foxes", "Tides", "Pilots", "Echoes", "Lanterns", "Ravens", "Satellites", "Orchards", "Strangers",
              "Wolves", "Comets", "Harbors"]
START_TIMES = ["15:00", "17:30", "20:00", "22:30"]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    prices = distinct_numbers(rng, 89, 320, len(FESTIVALS))
    festival = [(fid, name, city, country, start, float(prices[fid - 1]))
                for fid, (name, city, country, start, _) in enumerate(FESTIVALS, start=1)]

    stage_counts = [rng.choice([3, 4]) for _ in FESTIVALS]
    capacities = distinct_numbers(rng, 8, 120, sum(stage_counts))
    stage = []
    for fid, count in enumerate(stage_counts, start=1):
        for name in STAGE_NAMES[:count]:
            stage.append((len(stage) + 1, fid, name, capacities[len(stage)] * 250))

    bands = rng.sample([f"The {adjective} {noun}" for adjective in BAND_ADJECTIVES for noun in BAND_NOUNS], 40)
    names = bands + person_names(rng, 24)  # bands and solo acts
    artist = [(aid, name, rng.choice(GENRES), rng.choice(COUNTRIES), rng.randint(1985, 2022))
              for aid, name in enumerate(names, start=1)]
    touring = [a for a in artist if a[0] not in set(rng.sample(range(1, len(artist) + 1), 6))]

    performance = []
    for fid, (_, _, _, start, genres) in enumerate(FESTIVALS, start=1):
        stages = [s for s in stage if s[1] == fid]
        slots = [(day, time, s) for day in range(3) for time in START_TIMES for s in stages if rng.random() < 0.6]
        # a festival books each artist once, mostly from the genres it is known for
        weights = [5 if a[2] in genres else 1 for a in touring]
        booked = []
        while len(booked) < len(slots):
            pick = rng.choices(touring, weights)[0]
            if pick not in booked:
                booked.append(pick)
        for (day, time, s), act in zip(slots, booked):
            date = (datetime.date.fromisoformat(start) + datetime.timedelta(days=day)).isoformat()
            performance.append((len(performance) + 1, act[0], s[0], date, time, rng.choice([45, 60, 75, 90, 120]),
                                int(s[3] * rng.uniform(0.3, 1.0))))
    return {"festival": festival, "stage": stage, "artist": artist, "performance": performance}


FESTIVAL = "SELECT name AS festival FROM festival"
ARTIST = ("SELECT DISTINCT T1.name AS artist FROM artist AS T1 JOIN performance AS T2 "
          "ON T1.artist_id = T2.artist_id")
GENRE = "SELECT DISTINCT genre FROM artist"

TEMPLATES = [
    {"category": "where",
     "question": "Which artists were formed before {year}?",
     "query": "SELECT name FROM artist WHERE formed_year < {year}",
     "slots": [{"year": 1990}, {"year": 1995}, {"year": 2000}]},
    {"category": "where",
     "question": "What are the names of the {genre} artists from {country}?",
     "query": "SELECT name FROM artist WHERE genre = '{genre}' AND country = '{country}'",
     "slots": "SELECT DISTINCT genre, country FROM artist"},
    {"category": "where",
     "question": "Which stages can hold more than {n} people? Give their names and capacities.",
     "query": "SELECT name, capacity FROM stage WHERE capacity > {n}",
     "slots": [{"n": 20000}, {"n": 25000}]},
    {"category": "join",
     "question": "What are the names and capacities of the stages at {festival}?",
     "query": "SELECT T1.name, T1.capacity FROM stage AS T1 JOIN festival AS T2 ON T1.festival_id = T2.festival_id "
              "WHERE T2.name = '{festival}'",
     "slots": FESTIVAL},
    {"category": "join",
     "question": "When did {artist} perform, and at what time?",
     "query": "SELECT T2.performance_date, T2.start_time FROM artist AS T1 JOIN performance AS T2 "
              "ON T1.artist_id = T2.artist_id WHERE T1.name = '{artist}'",
     "slots": ARTIST},
    {"category": "join",
     "question": "Which artists performed on {date}?",
     "query": "SELECT T1.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "WHERE T2.performance_date = '{date}'",
     "slots": "SELECT DISTINCT performance_date AS date FROM performance"},
    {"category": "multi_join",
     "question": "Which artists played the {stage} of {festival}?",
     "query": "SELECT T1.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN stage AS T3 ON T2.stage_id = T3.stage_id JOIN festival AS T4 ON T3.festival_id = T4.festival_id "
              "WHERE T3.name = '{stage}' AND T4.name = '{festival}'",
     "slots": "SELECT T1.name AS stage, T2.name AS festival FROM stage AS T1 JOIN festival AS T2 "
              "ON T1.festival_id = T2.festival_id"},
    {"category": "multi_join",
     "question": "At which festivals did {artist} perform?",
     "query": "SELECT T4.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN stage AS T3 ON T2.stage_id = T3.stage_id JOIN festival AS T4 ON T3.festival_id = T4.festival_id "
              "WHERE T1.name = '{artist}'",
     "slots": ARTIST},
    {"category": "multi_join",
     "question": "On which stages did {genre} artists perform? List the distinct stage names.",
     "query": "SELECT DISTINCT T3.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN stage AS T3 ON T2.stage_id = T3.stage_id WHERE T1.genre = '{genre}'",
     "slots": GENRE},
    {"category": "aggregate",
     "question": "How many performances were there at {festival}?",
     "query": "SELECT COUNT(*) FROM performance AS T1 JOIN stage AS T2 ON T1.stage_id = T2.stage_id "
              "JOIN festival AS T3 ON T2.festival_id = T3.festival_id WHERE T3.name = '{festival}'",
     "slots": FESTIVAL},
    {"category": "aggregate",
     "question": "What is the average attendance of the performances by {genre} artists?",
     "query": "SELECT AVG(T2.attendance) FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "WHERE T1.genre = '{genre}'",
     "slots": GENRE},
    {"category": "aggregate",
     "question": "What is the total capacity of all stages at {festival}?",
     "query": "SELECT SUM(T1.capacity) FROM stage AS T1 JOIN festival AS T2 ON T1.festival_id = T2.festival_id "
              "WHERE T2.name = '{festival}'",
     "slots": FESTIVAL},
    {"category": "aggregate",
     "question": "What are the cheapest and the most expensive festival tickets?",
     "query": "SELECT MIN(ticket_price), MAX(ticket_price) FROM festival"},
    {"category": "group_by",
     "question": "How many artists are there in each genre?",
     "query": "SELECT genre, COUNT(*) FROM artist GROUP BY genre"},
    {"category": "group_by",
     "question": "Which artists have performed more than {n} times?",
     "query": "SELECT T1.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "GROUP BY T1.artist_id HAVING COUNT(*) > {n}",
     "slots": [{"n": 2}, {"n": 3}, {"n": 4}]},
    {"category": "group_by",
     "question": "What is the total attendance of each festival? Show the festival names and totals.",
     "query": "SELECT T3.name, SUM(T1.attendance) FROM performance AS T1 JOIN stage AS T2 "
              "ON T1.stage_id = T2.stage_id JOIN festival AS T3 ON T2.festival_id = T3.festival_id GROUP BY T3.name"},
    {"category": "order_limit",
     "question": "Which performance drew the largest crowd? Give the artist name and the attendance.",
     "query": "SELECT T1.name, T2.attendance FROM artist AS T1 JOIN performance AS T2 "
              "ON T1.artist_id = T2.artist_id ORDER BY T2.attendance DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the festivals from the most to the least expensive ticket.",
     "query": "SELECT name, ticket_price FROM festival ORDER BY ticket_price DESC"},
    {"category": "order_limit",
     "question": "What are the {n} largest stages? Give the stage and festival names.",
     "query": "SELECT T1.name, T2.name FROM stage AS T1 JOIN festival AS T2 ON T1.festival_id = T2.festival_id "
              "ORDER BY T1.capacity DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "Which festival has the largest total stage capacity?",
     "query": "SELECT T2.name FROM stage AS T1 JOIN festival AS T2 ON T1.festival_id = T2.festival_id "
              "GROUP BY T2.name ORDER BY SUM(T1.capacity) DESC LIMIT 1"},
    {"category": "nested",
     "question": "Which artists have never performed at any of the festivals?",
     "query": "SELECT name FROM artist WHERE artist_id NOT IN (SELECT artist_id FROM performance)"},
    {"category": "nested",
     "question": "Which festivals charge more for a ticket than the average festival?",
     "query": "SELECT name FROM festival WHERE ticket_price > (SELECT AVG(ticket_price) FROM festival)"},
    {"category": "nested",
     "question": "Which artists performed at {festival}?",
     "query": "SELECT name FROM artist WHERE artist_id IN (SELECT T1.artist_id FROM performance AS T1 "
              "JOIN stage AS T2 ON T1.stage_id = T2.stage_id JOIN festival AS T3 ON T2.festival_id = T3.festival_id "
              "WHERE T3.name = '{festival}')",
     "slots": FESTIVAL},
    {"category": "nested",
     "question": "Which {genre} artists have never played a Main Stage?",
     "query": "SELECT name FROM artist WHERE genre = '{genre}' AND artist_id NOT IN (SELECT T1.artist_id "
              "FROM performance AS T1 JOIN stage AS T2 ON T1.stage_id = T2.stage_id WHERE T2.name = 'Main Stage')",
     "slots": GENRE},
    {"category": "set_op",
     "question": "Which artists performed at both {festival} and {other}?",
     "query": "SELECT T1.name FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN stage AS T3 ON T2.stage_id = T3.stage_id JOIN festival AS T4 ON T3.festival_id = T4.festival_id "
              "WHERE T4.name = '{festival}' INTERSECT SELECT T1.name FROM artist AS T1 JOIN performance AS T2 "
              "ON T1.artist_id = T2.artist_id JOIN stage AS T3 ON T2.stage_id = T3.stage_id JOIN festival AS T4 "
              "ON T3.festival_id = T4.festival_id WHERE T4.name = '{other}'",
     "slots": "SELECT T1.name AS festival, T2.name AS other FROM festival AS T1 JOIN festival AS T2 "
              "ON T1.festival_id < T2.festival_id"},
    {"category": "set_op",
     "question": "Which {genre} artists have not performed in {year}?",
     "query": "SELECT name FROM artist WHERE genre = '{genre}' EXCEPT SELECT T1.name FROM artist AS T1 "
              "JOIN performance AS T2 ON T1.artist_id = T2.artist_id WHERE T2.performance_date LIKE '{year}%'",
     "slots": "SELECT DISTINCT genre, 2024 AS year FROM artist"},
    {"category": "set_op",
     "question": "Which artists come from {country} or play {genre}?",
     "query": "SELECT name FROM artist WHERE country = '{country}' UNION SELECT name FROM artist "
              "WHERE genre = '{genre}'",
     "slots": "SELECT DISTINCT T1.country, T2.genre FROM artist AS T1 JOIN artist AS T2 ON T1.genre != T2.genre"},
    {"category": "distinct",
     "question": "What are the different genres of the artists?",
     "query": "SELECT DISTINCT genre FROM artist"},
    {"category": "distinct",
     "question": "From which different countries did the artists at {festival} come?",
     "query": "SELECT DISTINCT T1.country FROM artist AS T1 JOIN performance AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN stage AS T3 ON T2.stage_id = T3.stage_id JOIN festival AS T4 ON T3.festival_id = T4.festival_id "
              "WHERE T4.name = '{festival}'",
     "slots": FESTIVAL},
    {"category": "distinct",
     "question": "How many different artists played at {festival}?",
     "query": "SELECT COUNT(DISTINCT T1.artist_id) FROM performance AS T1 JOIN stage AS T2 "
              "ON T1.stage_id = T2.stage_id JOIN festival AS T3 ON T2.festival_id = T3.festival_id "
              "WHERE T3.name = '{festival}'",
     "slots": FESTIVAL},
    {"category": "like",
     "question": "Which bands have a name starting with 'The {word}'?",
     "query": "SELECT name FROM artist WHERE name LIKE 'The {word}%'",
     "slots": [{"word": word} for word in ("Velvet", "Neon", "Midnight", "Silver")]},
    {"category": "like",
     "question": "Which artists have a name ending in '{suffix}'?",
     "query": "SELECT name FROM artist WHERE name LIKE '%{suffix}'",
     "slots": [{"suffix": suffix} for suffix in ("Wolves", "Echoes", "Comets")]},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "festival": {"one": "festival", "many": "festivals", "label": ("name", "name", "names"),
                 "text": {"country": ("country", "countries")}, "number": {"ticket_price": "ticket price"}},
    "stage": {"one": "stage", "many": "stages", "label": ("name", "name", "names"), "number": {"capacity": "capacity"}},
    "artist": {"one": "artist", "many": "artists", "label": ("name", "name", "names"),
               "text": {"genre": "genre", "country": ("country", "countries")}, "number": {"formed_year": "year formed"}},
    "performance": {"one": "performance", "many": "performances", "label": None,
                    "number": {"attendance": "attendance", "duration_min": "duration in minutes"}},
}
