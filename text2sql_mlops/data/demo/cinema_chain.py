"""Cinema chain: cinemas, films and the screenings of films in cinemas."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers

DB_ID = "cinema_chain"

SCHEMA = """
CREATE TABLE cinema (
    cinema_id INTEGER PRIMARY KEY,
    cinema_name TEXT NOT NULL,
    city TEXT NOT NULL,
    num_screens INTEGER NOT NULL,
    opened_yr INTEGER NOT NULL
);
CREATE TABLE film (
    film_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    genre TEXT NOT NULL,
    age_rating TEXT NOT NULL,
    runtime_min INTEGER NOT NULL,
    release_yr INTEGER NOT NULL
);
CREATE TABLE screening (
    screening_id INTEGER PRIMARY KEY,
    cinema_id INTEGER NOT NULL,
    film_id INTEGER NOT NULL,
    show_date DATE NOT NULL,
    start_time TEXT NOT NULL,
    screen_format TEXT NOT NULL,
    tickets_sold INTEGER NOT NULL,
    ticket_price REAL NOT NULL,
    FOREIGN KEY (cinema_id) REFERENCES cinema (cinema_id),
    FOREIGN KEY (film_id) REFERENCES film (film_id)
);
"""

CINEMAS = [  # name, city
    ("Rialto Downtown", "Glasgow"), ("Rialto Riverside", "Glasgow"), ("Orpheum Park", "Leeds"),
    ("Starlight Leeds", "Leeds"), ("Starlight Harbour", "Bristol"), ("Majestic Bristol", "Bristol"),
    ("Majestic Central", "Cardiff"), ("Lumiere Cardiff", "Cardiff"), ("Lumiere Old Town", "Edinburgh"),
    ("Palladium Edinburgh", "Edinburgh"), ("Palladium Quay", "Belfast"), ("Electric Belfast", "Belfast"),
    ("Electric Canal", "Manchester"), ("Regal Manchester", "Manchester"), ("Regal Northern Quarter", "Manchester"),
]
# The films are fictional.
FILMS = [  # title, genre, age rating
    ("The Last Lighthouse", "Drama", "PG-13"), ("Midnight Orchard", "Thriller", "R"),
    ("Rocket Girls", "Family", "PG"), ("The Silver Fox", "Animation", "G"), ("Iron Harbor", "Action", "PG-13"),
    ("A Winter in Porto", "Romance", "PG"), ("Shadows of Tomorrow", "Science Fiction", "PG-13"),
    ("The Quiet Valley", "Drama", "PG"), ("Laugh Track", "Comedy", "PG-13"), ("Deep Blue Signal", "Thriller", "R"),
    ("The Paper Kingdom", "Animation", "G"), ("Night Runner", "Action", "R"),
    ("Second Chances", "Romance", "PG-13"), ("Planet of Glass", "Science Fiction", "PG-13"),
    ("The Great Cake Heist", "Comedy", "PG"), ("Wild Horses", "Family", "G"),
    ("The Forgotten Letter", "Drama", "PG-13"), ("Storm Chasers", "Action", "PG-13"),
    ("Moonlight Sonata", "Romance", "R"), ("The Clockmaker", "Animation", "PG"),
    ("Cold Case Files", "Thriller", "R"), ("Summer Camp Chaos", "Comedy", "PG"),
    ("Beyond the Red Dunes", "Science Fiction", "PG-13"), ("The Brave Little Tugboat", "Family", "G"),
    ("The Inheritance", "Drama", "R"), ("Double Trouble", "Comedy", "PG-13"),
    ("Echoes of War", "Action", "R"), ("The Astronomer", "Science Fiction", "PG"),
    ("Paper Planes", "Family", "G"), ("Last Train to Lisbon", "Thriller", "PG-13"),
]
BASE_RUNTIME = {"Animation": 90, "Family": 95, "Comedy": 100, "Romance": 110, "Drama": 120, "Thriller": 115,
                "Action": 125, "Science Fiction": 130}
FORMATS, FORMAT_PRICE = ["2D", "3D", "IMAX"], {"2D": 9.5, "3D": 12.0, "IMAX": 15.5}


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    screens = distinct_numbers(rng, 3, 22, len(CINEMAS))
    cinema = [(cid, name, city, screens[cid - 1], rng.randint(1978, 2021))
              for cid, (name, city) in enumerate(CINEMAS, start=1)]

    runtimes, film = [], []
    for fid, (title, genre, rating) in enumerate(FILMS, start=1):
        runtime = BASE_RUNTIME[genre] + rng.randint(-12, 35)
        while runtime in runtimes:  # distinct runtimes: "the longest film" has one answer
            runtime += 1
        runtimes.append(runtime)
        film.append((fid, title, genre, rating, runtime, rng.randint(2019, 2024)))

    screening = []
    for sid in range(1, 121):
        fid = rng.randint(1, len(film))
        fmt = rng.choices(FORMATS, [65, 22, 13])[0]
        start = f"{rng.choice([11, 13, 14, 16, 17, 19, 20, 21, 22])}:{rng.choice(['00', '15', '30', '45'])}"
        price = round(FORMAT_PRICE[fmt] + rng.choice([0, 0.5, 1.0, 1.5, 2.0]), 2)
        screening.append((sid, rng.randint(1, len(cinema)), fid, date_between(rng, "2024-03-01", "2024-04-30"),
                          start, fmt, rng.randint(12, 240), price))
    return {"cinema": cinema, "film": film, "screening": screening}


GENRE = "SELECT DISTINCT genre FROM film"
FILM = "SELECT title AS film FROM film"
CINEMA = "SELECT cinema_name AS cinema FROM cinema"

TEMPLATES = [
    {"category": "where",
     "question": "What are the titles of the {genre} films?",
     "query": "SELECT title FROM film WHERE genre = '{genre}'",
     "slots": GENRE},
    {"category": "where",
     "question": "Which films are longer than {minutes} minutes? Give their titles and running times.",
     "query": "SELECT title, runtime_min FROM film WHERE runtime_min > {minutes}",
     "slots": [{"minutes": 130}, {"minutes": 140}, {"minutes": 150}]},
    {"category": "where",
     "question": "What are the names of the cinemas in {city}?",
     "query": "SELECT cinema_name FROM cinema WHERE city = '{city}'",
     "slots": "SELECT DISTINCT city FROM cinema"},
    {"category": "join",
     "question": "When was {film} shown? Give the show dates and start times.",
     "query": "SELECT T1.show_date, T1.start_time FROM screening AS T1 JOIN film AS T2 ON T1.film_id = T2.film_id "
              "WHERE T2.title = '{film}'",
     "slots": FILM},
    {"category": "join",
     "question": "How many tickets were sold in total for {film}?",
     "query": "SELECT SUM(T1.tickets_sold) FROM screening AS T1 JOIN film AS T2 ON T1.film_id = T2.film_id "
              "WHERE T2.title = '{film}'",
     "slots": FILM},
    {"category": "join",
     "question": "How many {fmt} screenings did {cinema} host?",
     "query": "SELECT COUNT(*) FROM screening AS T1 JOIN cinema AS T2 ON T1.cinema_id = T2.cinema_id "
              "WHERE T1.screen_format = '{fmt}' AND T2.cinema_name = '{cinema}'",
     "slots": "SELECT DISTINCT T1.screen_format AS fmt, T2.cinema_name AS cinema FROM screening AS T1 "
              "JOIN cinema AS T2 ON T1.cinema_id = T2.cinema_id"},
    {"category": "multi_join",
     "question": "Which films were shown at {cinema}?",
     "query": "SELECT DISTINCT T3.title FROM screening AS T1 JOIN cinema AS T2 ON T1.cinema_id = T2.cinema_id "
              "JOIN film AS T3 ON T1.film_id = T3.film_id WHERE T2.cinema_name = '{cinema}'",
     "slots": CINEMA},
    {"category": "aggregate",
     "question": "What is the average running time of the {genre} films?",
     "query": "SELECT AVG(runtime_min) FROM film WHERE genre = '{genre}'",
     "slots": GENRE},
    {"category": "aggregate",
     "question": "How many films are rated {rating}?",
     "query": "SELECT COUNT(*) FROM film WHERE age_rating = '{rating}'",
     "slots": "SELECT DISTINCT age_rating AS rating FROM film"},
    {"category": "group_by",
     "question": "How many screenings did each cinema host? Show the cinema names and counts.",
     "query": "SELECT T2.cinema_name, COUNT(*) FROM screening AS T1 JOIN cinema AS T2 ON T1.cinema_id = T2.cinema_id "
              "GROUP BY T2.cinema_name"},
    {"category": "group_by",
     "question": "What is the average ticket price for each screening format?",
     "query": "SELECT screen_format, AVG(ticket_price) FROM screening GROUP BY screen_format"},
    {"category": "order_limit",
     "question": "Which film has the longest running time?",
     "query": "SELECT title FROM film ORDER BY runtime_min DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names of the {n} cinemas with the most screens.",
     "query": "SELECT cinema_name FROM cinema ORDER BY num_screens DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "like",
     "question": "Which films have a title starting with '{word}'?",
     "query": "SELECT title FROM film WHERE title LIKE '{word} %'",
     "slots": [{"word": "The"}, {"word": "Paper"}]},
]

ENTITIES = {
    "cinema": {
        "one": "cinema", "many": "cinemas",
        "label": ("cinema_name", "name", "names"),
        "text": {"city": ("city", "cities")},
        "number": {"num_screens": "number of screens", "opened_yr": "opening year"},
    },
    "film": {
        "one": "film", "many": "films",
        "label": ("title", "title", "titles"),
        "text": {"genre": ("genre", "genres"), "age_rating": ("age rating", "age ratings")},
        "number": {"runtime_min": "running time in minutes", "release_yr": "release year"},
    },
    "screening": {
        "one": "screening", "many": "screenings",
        "label": None,
        "text": {"screen_format": ("screening format", "screening formats")},
        "number": {"tickets_sold": "number of tickets sold", "ticket_price": "ticket price"},
    },
}
