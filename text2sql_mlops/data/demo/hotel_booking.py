"""Hotel booking: hotels, guests and their bookings."""

from __future__ import annotations

import random

from .pools import date_between, distinct_numbers, person_names

DB_ID = "hotel_booking"

SCHEMA = """
CREATE TABLE hotel (
    hotel_id INTEGER PRIMARY KEY,
    hotel_name TEXT NOT NULL,
    city TEXT NOT NULL,
    chain TEXT NOT NULL,
    stars INTEGER NOT NULL,
    num_rooms INTEGER NOT NULL,
    yr_built INTEGER NOT NULL
);
CREATE TABLE guest (
    guest_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    nationality TEXT NOT NULL,
    loyalty_tier TEXT NOT NULL,
    birth_yr INTEGER NOT NULL
);
CREATE TABLE booking (
    booking_id INTEGER PRIMARY KEY,
    hotel_id INTEGER NOT NULL,
    guest_id INTEGER NOT NULL,
    check_in DATE NOT NULL,
    nights INTEGER NOT NULL,
    room_type TEXT NOT NULL,
    total_cost REAL NOT NULL,
    FOREIGN KEY (hotel_id) REFERENCES hotel (hotel_id),
    FOREIGN KEY (guest_id) REFERENCES guest (guest_id)
);
"""

HOTEL_NAMES = [
    "Grand Harbor Hotel", "Lakeside Inn", "Royal Garden Hotel", "Silver Birch Lodge", "Old Town Suites",
    "Riverside Palace", "Blue Lagoon Resort", "Maple Court Hotel", "Harbor View Inn", "Golden Gate Suites",
    "Park Avenue Hotel", "Cedar Hill Lodge", "Sunset Boulevard Hotel", "Grand Central Inn", "Coral Bay Resort",
    "Willow Creek Inn", "Alpine Crown Hotel", "Ocean Breeze Resort", "Mercury Plaza Hotel", "Ivy House Hotel",
]
HOTEL_CITIES = ["Lisbon", "Vienna", "Prague", "Kyoto", "Toronto", "Cape Town", "Melbourne"]
CHAINS = ["Independent", "Marlow Group", "Sunrise Resorts", "Crescent Hotels"]
NATIONALITIES = ["Canada", "Germany", "Japan", "Brazil", "India", "France", "Australia", "Mexico"]
TIERS, TIER_WEIGHTS = ["Bronze", "Silver", "Gold", "Platinum"], [45, 30, 17, 8]
ROOM_TYPES = {"Single": 1.0, "Double": 1.4, "Family": 1.8, "Suite": 2.8}  # price factor
ROOM_WEIGHTS = [30, 40, 18, 12]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    rooms = distinct_numbers(rng, 18, 420, len(HOTEL_NAMES))
    built = distinct_numbers(rng, 1885, 2021, len(HOTEL_NAMES))
    hotel = []
    for hid, name in enumerate(HOTEL_NAMES, start=1):
        hotel.append((hid, name, rng.choice(HOTEL_CITIES), rng.choice(CHAINS), rng.choice([2, 3, 3, 4, 4, 5]),
                      rooms[hid - 1], built[hid - 1]))

    names = person_names(rng, 60)
    guest = [(gid, names[gid - 1], rng.choice(NATIONALITIES), rng.choices(TIERS, TIER_WEIGHTS)[0],
              rng.randint(1948, 2004)) for gid in range(1, 61)]

    booking = []
    for bid in range(1, 121):
        hid = rng.randint(1, len(hotel))
        room = rng.choices(list(ROOM_TYPES), ROOM_WEIGHTS)[0]
        nights = rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 7, 10])
        rate = 35 * hotel[hid - 1][4] * ROOM_TYPES[room] * rng.uniform(0.85, 1.2)
        booking.append((bid, hid, rng.randint(1, len(guest)), date_between(rng, "2023-03-01", "2024-10-31"),
                        nights, room, round(nights * rate, 2)))
    return {"hotel": hotel, "guest": guest, "booking": booking}


CITY = "SELECT DISTINCT city FROM hotel"
HOTEL = "SELECT hotel_name AS hotel FROM hotel"
GUEST = "SELECT full_name AS guest FROM guest"

TEMPLATES = [
    {"category": "where",
     "question": "What are the names of the hotels in {city}?",
     "query": "SELECT hotel_name FROM hotel WHERE city = '{city}'",
     "slots": CITY},
    {"category": "where",
     "question": "Which hotels were built before {year}? Give their names and the year they were built.",
     "query": "SELECT hotel_name, yr_built FROM hotel WHERE yr_built < {year}",
     "slots": [{"year": 1920}, {"year": 1950}, {"year": 1975}]},
    {"category": "where",
     "question": "List the names of the guests from {country} with {tier} loyalty status.",
     "query": "SELECT full_name FROM guest WHERE nationality = '{country}' AND loyalty_tier = '{tier}'",
     "slots": "SELECT DISTINCT nationality AS country, loyalty_tier AS tier FROM guest"},
    {"category": "join",
     "question": "What are the check-in dates and numbers of nights of the bookings made by {guest}?",
     "query": "SELECT T1.check_in, T1.nights FROM booking AS T1 JOIN guest AS T2 ON T1.guest_id = T2.guest_id "
              "WHERE T2.full_name = '{guest}'",
     "slots": GUEST},
    {"category": "join",
     "question": "How many nights in total were booked at {hotel}?",
     "query": "SELECT SUM(T1.nights) FROM booking AS T1 JOIN hotel AS T2 ON T1.hotel_id = T2.hotel_id "
              "WHERE T2.hotel_name = '{hotel}'",
     "slots": HOTEL},
    {"category": "join",
     "question": "Which guests booked a {room} room? Give their names.",
     "query": "SELECT DISTINCT T2.full_name FROM booking AS T1 JOIN guest AS T2 ON T1.guest_id = T2.guest_id "
              "WHERE T1.room_type = '{room}'",
     "slots": "SELECT DISTINCT room_type AS room FROM booking"},
    {"category": "multi_join",
     "question": "In which hotels has {guest} stayed?",
     "query": "SELECT DISTINCT T3.hotel_name FROM booking AS T1 JOIN guest AS T2 ON T1.guest_id = T2.guest_id "
              "JOIN hotel AS T3 ON T1.hotel_id = T3.hotel_id WHERE T2.full_name = '{guest}'",
     "slots": GUEST},
    {"category": "aggregate",
     "question": "What is the average number of rooms of the hotels in {city}?",
     "query": "SELECT AVG(num_rooms) FROM hotel WHERE city = '{city}'",
     "slots": CITY},
    {"category": "aggregate",
     "question": "How many guests have {tier} loyalty status?",
     "query": "SELECT COUNT(*) FROM guest WHERE loyalty_tier = '{tier}'",
     "slots": "SELECT DISTINCT loyalty_tier AS tier FROM guest"},
    {"category": "group_by",
     "question": "How many hotels does each chain have? Show the chain and the count.",
     "query": "SELECT chain, COUNT(*) FROM hotel GROUP BY chain"},
    {"category": "group_by",
     "question": "What is the average total cost of the bookings for each room type?",
     "query": "SELECT room_type, AVG(total_cost) FROM booking GROUP BY room_type"},
    {"category": "order_limit",
     "question": "Which hotel has the largest number of rooms?",
     "query": "SELECT hotel_name FROM hotel ORDER BY num_rooms DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names and construction years of the {n} oldest hotels.",
     "query": "SELECT hotel_name, yr_built FROM hotel ORDER BY yr_built LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "like",
     "question": "Which hotels have '{word}' in their name?",
     "query": "SELECT hotel_name FROM hotel WHERE hotel_name LIKE '%{word}%'",
     "slots": [{"word": "Resort"}, {"word": "Inn"}, {"word": "Grand"}]},
]

ENTITIES = {
    "hotel": {
        "one": "hotel", "many": "hotels",
        "label": ("hotel_name", "name", "names"),
        "text": {"city": ("city", "cities"), "chain": ("hotel chain", "hotel chains")},
        "number": {"stars": "star rating", "num_rooms": "number of rooms", "yr_built": "year built"},
    },
    "guest": {
        "one": "guest", "many": "guests",
        "label": ("full_name", "name", "names"),
        "text": {"nationality": ("nationality", "nationalities"), "loyalty_tier": ("loyalty tier", "loyalty tiers")},
        "number": {"birth_yr": "birth year"},
    },
    "booking": {
        "one": "booking", "many": "bookings",
        "label": None,
        "text": {"room_type": ("room type", "room types")},
        "number": {"nights": "number of nights", "total_cost": "total cost"},
    },
}
