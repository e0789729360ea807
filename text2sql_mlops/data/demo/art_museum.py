"""Art museum: artists, galleries and the artworks shown in them."""

from __future__ import annotations

import random

from .pools import distinct_numbers, person_names

DB_ID = "art_museum"

SCHEMA = """
CREATE TABLE artist (
    artist_id INTEGER PRIMARY KEY,
    artist_name TEXT NOT NULL,
    nationality TEXT NOT NULL,
    movement TEXT NOT NULL,
    birth_yr INTEGER NOT NULL
);
CREATE TABLE gallery (
    gallery_id INTEGER PRIMARY KEY,
    gallery_name TEXT NOT NULL,
    wing TEXT NOT NULL,
    floor_no INTEGER NOT NULL,
    area_sqm REAL NOT NULL
);
CREATE TABLE artwork (
    artwork_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    artist_id INTEGER NOT NULL,
    gallery_id INTEGER NOT NULL,
    medium TEXT NOT NULL,
    yr_created INTEGER NOT NULL,
    insured_value REAL NOT NULL,
    FOREIGN KEY (artist_id) REFERENCES artist (artist_id),
    FOREIGN KEY (gallery_id) REFERENCES gallery (gallery_id)
);
"""

# The artists and their works are fictional.
NATIONALITIES = ["French", "Spanish", "Dutch", "American", "Mexican", "Japanese", "Italian", "Norwegian"]
MOVEMENTS = {  # movement: (first birth year, last birth year, media)
    "Realism": (1815, 1850, ["Oil on canvas", "Charcoal"]),
    "Impressionism": (1835, 1870, ["Oil on canvas", "Watercolor"]),
    "Cubism": (1875, 1895, ["Oil on canvas", "Bronze"]),
    "Surrealism": (1890, 1915, ["Oil on canvas", "Photograph"]),
    "Abstract Expressionism": (1900, 1930, ["Oil on canvas", "Acrylic"]),
    "Pop Art": (1925, 1945, ["Acrylic", "Screenprint", "Photograph"]),
    "Minimalism": (1928, 1960, ["Marble", "Bronze", "Acrylic"]),
}
GALLERIES = [  # name, wing
    ("Rotunda", "Central"), ("Sculpture Court", "Central"), ("Hall of Light", "North"), ("Blue Salon", "North"),
    ("Garden Room", "North"), ("Long Gallery", "East"), ("River Room", "East"), ("Print Cabinet", "East"),
    ("Modern Hall", "South"), ("Skylight Gallery", "South"), ("Red Salon", "South"), ("Tower Room", "West"),
    ("Photography Hall", "West"), ("Atrium", "West"), ("Vault Gallery", "West"),
]
TITLE_WORDS = ["Morning", "Evening", "Winter", "Summer", "Silent", "Golden", "Broken", "Distant", "Blue", "Red"]
TITLE_NOUNS = ["Harbor", "Garden", "River", "Portrait", "Orchard", "Bridge", "Window", "Dancer", "Field",
               "Lighthouse", "Forest", "Mirror", "Horizon", "Village"]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    names = person_names(rng, 24)
    movements = list(MOVEMENTS) * 4
    artist = []
    for aid in range(1, 25):
        movement = movements[aid - 1]
        first, last, _ = MOVEMENTS[movement]
        artist.append((aid, names[aid - 1], rng.choice(NATIONALITIES), movement, rng.randint(first, last)))

    areas = distinct_numbers(rng, 600, 4800, len(GALLERIES), scale=10)
    gallery = [(gid, name, wing, rng.randint(1, 3), areas[gid - 1]) for gid, (name, wing) in enumerate(GALLERIES, 1)]

    titles = rng.sample([f"{word} {noun}" for word in TITLE_WORDS for noun in TITLE_NOUNS], 95)
    values = distinct_numbers(rng, 40, 9500, 95)  # in thousands
    artwork = []
    for wid, title in enumerate(titles, start=1):
        aid = rng.randint(1, len(artist))
        _, _, _, movement, born = artist[aid - 1]
        medium = rng.choice(MOVEMENTS[movement][2])
        artwork.append((wid, title, aid, rng.randint(1, len(gallery)), medium, born + rng.randint(22, 60),
                        values[wid - 1] * 1000.0))
    return {"artist": artist, "gallery": gallery, "artwork": artwork}


ARTIST = "SELECT artist_name AS artist FROM artist"
MEDIUM = "SELECT DISTINCT medium FROM artwork"

TEMPLATES = [
    {"category": "where",
     "question": "Which artworks use the medium {medium}? Give their titles.",
     "query": "SELECT title FROM artwork WHERE medium = '{medium}'",
     "slots": MEDIUM},
    {"category": "where",
     "question": "Which artists were born before {year}? Give their names and birth years.",
     "query": "SELECT artist_name, birth_yr FROM artist WHERE birth_yr < {year}",
     "slots": [{"year": 1840}, {"year": 1880}, {"year": 1900}]},
    {"category": "where",
     "question": "What are the names of the galleries in the {wing} wing?",
     "query": "SELECT gallery_name FROM gallery WHERE wing = '{wing}'",
     "slots": "SELECT DISTINCT wing FROM gallery"},
    {"category": "join",
     "question": "What are the titles of the artworks by {artist}?",
     "query": "SELECT T1.title FROM artwork AS T1 JOIN artist AS T2 ON T1.artist_id = T2.artist_id "
              "WHERE T2.artist_name = '{artist}'",
     "slots": ARTIST},
    {"category": "join",
     "question": "Which artworks are shown in the gallery called {gallery}? List their titles and creation years.",
     "query": "SELECT T1.title, T1.yr_created FROM artwork AS T1 JOIN gallery AS T2 ON T1.gallery_id = T2.gallery_id "
              "WHERE T2.gallery_name = '{gallery}'",
     "slots": "SELECT gallery_name AS gallery FROM gallery"},
    {"category": "join",
     "question": "How many artworks by {nationality} artists does the museum hold?",
     "query": "SELECT COUNT(*) FROM artwork AS T1 JOIN artist AS T2 ON T1.artist_id = T2.artist_id "
              "WHERE T2.nationality = '{nationality}'",
     "slots": "SELECT DISTINCT nationality FROM artist"},
    {"category": "multi_join",
     "question": "In which galleries are works by {artist} displayed?",
     "query": "SELECT DISTINCT T3.gallery_name FROM artwork AS T1 JOIN artist AS T2 ON T1.artist_id = T2.artist_id "
              "JOIN gallery AS T3 ON T1.gallery_id = T3.gallery_id WHERE T2.artist_name = '{artist}'",
     "slots": ARTIST},
    {"category": "aggregate",
     "question": "What is the total insured value of the artworks by {artist}?",
     "query": "SELECT SUM(T1.insured_value) FROM artwork AS T1 JOIN artist AS T2 ON T1.artist_id = T2.artist_id "
              "WHERE T2.artist_name = '{artist}'",
     "slots": ARTIST},
    {"category": "aggregate",
     "question": "What is the average creation year of the artworks with medium {medium}?",
     "query": "SELECT AVG(yr_created) FROM artwork WHERE medium = '{medium}'",
     "slots": MEDIUM},
    {"category": "group_by",
     "question": "How many artists belong to each art movement?",
     "query": "SELECT movement, COUNT(*) FROM artist GROUP BY movement"},
    {"category": "group_by",
     "question": "What is the average insured value of the artworks for each medium?",
     "query": "SELECT medium, AVG(insured_value) FROM artwork GROUP BY medium"},
    {"category": "order_limit",
     "question": "Which artwork has the highest insured value? Give its title.",
     "query": "SELECT title FROM artwork ORDER BY insured_value DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names of the {n} largest galleries by floor area.",
     "query": "SELECT gallery_name FROM gallery ORDER BY area_sqm DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "like",
     "question": "Which artworks have a title starting with '{word}'?",
     "query": "SELECT title FROM artwork WHERE title LIKE '{word}%'",
     "slots": [{"word": "Golden"}, {"word": "Winter"}, {"word": "Silent"}]},
]

ENTITIES = {
    "artist": {
        "one": "artist", "many": "artists",
        "label": ("artist_name", "name", "names"),
        "text": {"nationality": ("nationality", "nationalities"), "movement": ("art movement", "art movements")},
        "number": {"birth_yr": "birth year"},
    },
    "gallery": {
        "one": "gallery", "many": "galleries",
        "label": ("gallery_name", "name", "names"),
        "text": {"wing": ("wing", "wings")},
        "number": {"floor_no": "floor number", "area_sqm": "floor area in square meters"},
    },
    "artwork": {
        "one": "artwork", "many": "artworks",
        "label": ("title", "title", "titles"),
        "text": {"medium": ("medium", "media")},
        "number": {"insured_value": "insured value", "yr_created": "year of creation"},
    },
}
