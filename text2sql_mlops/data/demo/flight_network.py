"""Flight network: airlines, airports, aircraft models and scheduled flights (dev)."""

from __future__ import annotations

import math
import random

DB_ID = "flight_network"

SCHEMA = """
CREATE TABLE airline (
    airline_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    code TEXT NOT NULL,
    country TEXT NOT NULL,
    founded_year INTEGER NOT NULL
);
CREATE TABLE airport (
    airport_id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL
);
CREATE TABLE aircraft (
    aircraft_id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    manufacturer TEXT NOT NULL,
    seats INTEGER NOT NULL,
    range_km INTEGER NOT NULL
);
CREATE TABLE flight (
    flight_id INTEGER PRIMARY KEY,
    flight_number TEXT NOT NULL,
    airline_id INTEGER NOT NULL,
    origin_airport_id INTEGER NOT NULL,
    destination_airport_id INTEGER NOT NULL,
    aircraft_id INTEGER NOT NULL,
    departure_time TEXT NOT NULL,
    duration_min INTEGER NOT NULL,
    distance_km INTEGER NOT NULL,
    price REAL NOT NULL,
    FOREIGN KEY (airline_id) REFERENCES airline (airline_id),
    FOREIGN KEY (origin_airport_id) REFERENCES airport (airport_id),
    FOREIGN KEY (destination_airport_id) REFERENCES airport (airport_id),
    FOREIGN KEY (aircraft_id) REFERENCES aircraft (aircraft_id)
);
"""

# The airlines are fictional; airports and aircraft models are real (rounded figures).
AIRLINES = [  # name, code, country, founded, hub airport code
    ("Northwind Airways", "NW", "Canada", 1987, "YYZ"), ("Blue Horizon Airlines", "BH", "United States", 1995, "JFK"),
    ("Atlas Pacific", "AP", "Australia", 2001, "SYD"), ("Meridian Air", "MR", "United Kingdom", 1979, "LHR"),
    ("Coral Wings", "CW", "Singapore", 2008, "SIN"), ("Alpine Connect", "AC", "Germany", 2012, "FRA"),
    ("Sahara Sky", "SS", "United Arab Emirates", 1999, "DXB"), ("Sakura Airlines", "SK", "Japan", 1990, "HND"),
    ("Andes Air", "AN", "Brazil", 2004, "GRU"), ("Aurora Nordic", "AU", "Netherlands", 1993, "AMS"),
]
AIRPORTS = [  # code, name, city, country, latitude, longitude
    ("JFK", "John F. Kennedy International Airport", "New York", "United States", 40.64, -73.78),
    ("LAX", "Los Angeles International Airport", "Los Angeles", "United States", 33.94, -118.41),
    ("SFO", "San Francisco International Airport", "San Francisco", "United States", 37.62, -122.38),
    ("YYZ", "Toronto Pearson International Airport", "Toronto", "Canada", 43.68, -79.63),
    ("MEX", "Mexico City International Airport", "Mexico City", "Mexico", 19.44, -99.07),
    ("GRU", "Sao Paulo Guarulhos International Airport", "Sao Paulo", "Brazil", -23.43, -46.47),
    ("LHR", "Heathrow Airport", "London", "United Kingdom", 51.47, -0.45),
    ("LGW", "Gatwick Airport", "London", "United Kingdom", 51.15, -0.19),
    ("CDG", "Charles de Gaulle Airport", "Paris", "France", 49.01, 2.55),
    ("FRA", "Frankfurt Airport", "Frankfurt", "Germany", 50.04, 8.56),
    ("AMS", "Amsterdam Airport Schiphol", "Amsterdam", "Netherlands", 52.31, 4.76),
    ("MAD", "Madrid Barajas Airport", "Madrid", "Spain", 40.49, -3.57),
    ("FCO", "Leonardo da Vinci International Airport", "Rome", "Italy", 41.80, 12.25),
    ("IST", "Istanbul Airport", "Istanbul", "Turkey", 41.26, 28.74),
    ("DXB", "Dubai International Airport", "Dubai", "United Arab Emirates", 25.25, 55.36),
    ("DEL", "Indira Gandhi International Airport", "Delhi", "India", 28.56, 77.10),
    ("SIN", "Singapore Changi Airport", "Singapore", "Singapore", 1.36, 103.99),
    ("HND", "Haneda Airport", "Tokyo", "Japan", 35.55, 139.78),
    ("NRT", "Narita International Airport", "Tokyo", "Japan", 35.77, 140.39),
    ("ICN", "Incheon International Airport", "Seoul", "South Korea", 37.46, 126.44),
    ("SYD", "Sydney Kingsford Smith Airport", "Sydney", "Australia", -33.95, 151.18),
    ("CPT", "Cape Town International Airport", "Cape Town", "South Africa", -33.97, 18.60),
]
AIRCRAFT = [  # model, manufacturer, seats, range in km
    ("Airbus A220-300", "Airbus", 140, 6300), ("Airbus A320neo", "Airbus", 180, 6400),
    ("Airbus A321neo", "Airbus", 200, 7400), ("Airbus A330-900", "Airbus", 290, 13300),
    ("Airbus A350-900", "Airbus", 325, 15000), ("Boeing 737-800", "Boeing", 175, 5400),
    ("Boeing 737 MAX 8", "Boeing", 178, 6500), ("Boeing 787-9", "Boeing", 296, 14000),
    ("Boeing 777-300ER", "Boeing", 396, 13600), ("Embraer E195-E2", "Embraer", 132, 4800),
]


def great_circle_km(a: tuple, b: tuple) -> int:
    (lat1, lon1), (lat2, lon2) = (map(math.radians, point) for point in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(2 * 6371 * math.asin(math.sqrt(h)))


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    airline = [(i, name, code, country, founded) for i, (name, code, country, founded, _) in enumerate(AIRLINES, 1)]
    airport = [(i, code, name, city, country) for i, (code, name, city, country, _, _) in enumerate(AIRPORTS, 1)]
    aircraft = [(i, *model) for i, model in enumerate(AIRCRAFT, 1)]
    position = {i: (lat, lon) for i, (*_, lat, lon) in enumerate(AIRPORTS, 1)}
    hub = {i: next(a for a, row in enumerate(AIRPORTS, 1) if row[0] == spec[4]) for i, spec in enumerate(AIRLINES, 1)}

    fleet_size = rng.sample(range(5, 31), len(AIRLINES))  # bigger and smaller airlines
    flight, numbers = [], set()
    while len(flight) < 160:
        aid = rng.choices(range(1, len(AIRLINES) + 1), fleet_size)[0]
        # most routes touch the airline's hub, the way real networks look
        origin = hub[aid] if rng.random() < 0.6 else rng.randint(1, len(AIRPORTS))
        destination = rng.randint(1, len(AIRPORTS))
        if origin == destination:
            continue
        if rng.random() < 0.5:
            origin, destination = destination, origin
        distance = great_circle_km(position[origin], position[destination])
        able = [row for row in aircraft if row[4] >= distance * 1.05]
        if not able or distance < 300:  # out of range, or two airports of one city
            continue
        number = f"{AIRLINES[aid - 1][1]}{rng.randint(10, 999)}"
        if number in numbers:
            continue
        numbers.add(number)
        plane = rng.choice(able)
        departure = f"{rng.randint(5, 23):02d}:{5 * rng.randint(0, 11):02d}"
        duration = 5 * round((distance / 830 * 60 + 30) / 5)
        price = round(49 + distance * rng.uniform(0.06, 0.13), 2)
        flight.append((len(flight) + 1, number, aid, origin, destination, plane[0], departure, duration,
                       distance, price))
    return {"airline": airline, "airport": airport, "aircraft": aircraft, "flight": flight}


AIRLINE = "SELECT name AS airline FROM airline"
ORIGIN_CITY = ("SELECT DISTINCT T2.city FROM flight AS T1 JOIN airport AS T2 "
               "ON T1.origin_airport_id = T2.airport_id")

TEMPLATES = [
    {"category": "where",
     "question": "What are the flight numbers of the flights longer than {km} kilometers?",
     "query": "SELECT flight_number FROM flight WHERE distance_km > {km}",
     "slots": [{"km": 8000}, {"km": 10000}, {"km": 12000}]},
    {"category": "where",
     "question": "Which flights leave before {time}? Give the flight numbers and departure times.",
     "query": "SELECT flight_number, departure_time FROM flight WHERE departure_time < '{time}'",
     "slots": [{"time": "06:30"}, {"time": "07:00"}]},
    {"category": "where",
     "question": "What are the names of the airports in {country}?",
     "query": "SELECT name FROM airport WHERE country = '{country}'",
     "slots": "SELECT DISTINCT country FROM airport"},
    {"category": "join",
     "question": "What are the flight numbers of the flights operated by {airline}?",
     "query": "SELECT T1.flight_number FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "WHERE T2.name = '{airline}'",
     "slots": AIRLINE},
    {"category": "join",
     "question": "Which airline operates flight {number}?",
     "query": "SELECT T2.name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "WHERE T1.flight_number = '{number}'",
     "slots": "SELECT flight_number AS number FROM flight"},
    {"category": "join",
     "question": "What are the flight numbers of the flights departing from {city}?",
     "query": "SELECT T1.flight_number FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "WHERE T2.city = '{city}'",
     "slots": ORIGIN_CITY},
    {"category": "multi_join",
     "question": "Which airlines fly from {city} to {destination}?",
     "query": "SELECT DISTINCT T4.name FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "JOIN airport AS T3 ON T1.destination_airport_id = T3.airport_id JOIN airline AS T4 "
              "ON T1.airline_id = T4.airline_id WHERE T2.city = '{city}' AND T3.city = '{destination}'",
     "slots": "SELECT DISTINCT T2.city, T3.city AS destination FROM flight AS T1 JOIN airport AS T2 "
              "ON T1.origin_airport_id = T2.airport_id JOIN airport AS T3 "
              "ON T1.destination_airport_id = T3.airport_id"},
    {"category": "multi_join",
     "question": "Which aircraft models does {airline} fly?",
     "query": "SELECT DISTINCT T3.model FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "JOIN aircraft AS T3 ON T1.aircraft_id = T3.aircraft_id WHERE T2.name = '{airline}'",
     "slots": AIRLINE},
    {"category": "multi_join",
     "question": "What are the names of the airports that {airline} flies to?",
     "query": "SELECT DISTINCT T3.name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "JOIN airport AS T3 ON T1.destination_airport_id = T3.airport_id WHERE T2.name = '{airline}'",
     "slots": AIRLINE},
    {"category": "aggregate",
     "question": "How many flights depart from airport {code}?",
     "query": "SELECT COUNT(*) FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "WHERE T2.code = '{code}'",
     "slots": "SELECT code FROM airport"},
    {"category": "aggregate",
     "question": "What is the average ticket price of the flights operated by {airline}?",
     "query": "SELECT AVG(T1.price) FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "WHERE T2.name = '{airline}'",
     "slots": AIRLINE},
    {"category": "aggregate",
     "question": "What are the shortest and the longest flight distances?",
     "query": "SELECT MIN(distance_km), MAX(distance_km) FROM flight"},
    {"category": "aggregate",
     "question": "What is the total number of seats of all {manufacturer} aircraft models?",
     "query": "SELECT SUM(seats) FROM aircraft WHERE manufacturer = '{manufacturer}'",
     "slots": "SELECT DISTINCT manufacturer FROM aircraft"},
    {"category": "group_by",
     "question": "How many flights does each airline operate? Show the airline names and counts.",
     "query": "SELECT T2.name, COUNT(*) FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "GROUP BY T2.name"},
    {"category": "group_by",
     "question": "Which airports have more than {n} departing flights? Give their codes.",
     "query": "SELECT T2.code FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "GROUP BY T2.code HAVING COUNT(*) > {n}",
     "slots": [{"n": 8}, {"n": 10}, {"n": 12}]},
    {"category": "group_by",
     "question": "What is the average flight duration in minutes for each aircraft model?",
     "query": "SELECT T2.model, AVG(T1.duration_min) FROM flight AS T1 JOIN aircraft AS T2 "
              "ON T1.aircraft_id = T2.aircraft_id GROUP BY T2.model"},
    {"category": "order_limit",
     "question": "What is the flight number of the most expensive flight?",
     "query": "SELECT flight_number FROM flight ORDER BY price DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the flight numbers and prices of the {n} cheapest flights.",
     "query": "SELECT flight_number, price FROM flight ORDER BY price LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "Which airline operates the most flights?",
     "query": "SELECT T2.name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id "
              "GROUP BY T2.name ORDER BY COUNT(*) DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the aircraft models from the most seats to the fewest.",
     "query": "SELECT model FROM aircraft ORDER BY seats DESC"},
    {"category": "nested",
     "question": "Which flights cost more than the average flight? Give the flight numbers.",
     "query": "SELECT flight_number FROM flight WHERE price > (SELECT AVG(price) FROM flight)"},
    {"category": "nested",
     "question": "Which airlines have no flight to {city}?",
     "query": "SELECT name FROM airline WHERE airline_id NOT IN (SELECT T1.airline_id FROM flight AS T1 "
              "JOIN airport AS T2 ON T1.destination_airport_id = T2.airport_id WHERE T2.city = '{city}')",
     "slots": "SELECT DISTINCT city FROM airport"},
    {"category": "nested",
     "question": "Which aircraft models can fly farther than the longest flight operated by {airline}?",
     "query": "SELECT model FROM aircraft WHERE range_km > (SELECT MAX(T1.distance_km) FROM flight AS T1 "
              "JOIN airline AS T2 ON T1.airline_id = T2.airline_id WHERE T2.name = '{airline}')",
     "slots": AIRLINE},
    {"category": "nested",
     "question": "Which airports have departures flown with the {model}?",
     "query": "SELECT name FROM airport WHERE airport_id IN (SELECT T1.origin_airport_id FROM flight AS T1 "
              "JOIN aircraft AS T2 ON T1.aircraft_id = T2.aircraft_id WHERE T2.model = '{model}')",
     "slots": "SELECT model FROM aircraft"},
    {"category": "set_op",
     "question": "Which cities can be reached by direct flights from both {city} and {other}?",
     "query": "SELECT T3.city FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "JOIN airport AS T3 ON T1.destination_airport_id = T3.airport_id WHERE T2.city = '{city}' INTERSECT "
              "SELECT T3.city FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "JOIN airport AS T3 ON T1.destination_airport_id = T3.airport_id WHERE T2.city = '{other}'",
     "slots": "SELECT DISTINCT T1.city, T2.city AS other FROM airport AS T1 JOIN airport AS T2 ON T1.city < T2.city"},
    {"category": "set_op",
     "question": "Which airlines fly from {city} but not from {other}?",
     "query": "SELECT T3.name FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "JOIN airline AS T3 ON T1.airline_id = T3.airline_id WHERE T2.city = '{city}' EXCEPT "
              "SELECT T3.name FROM flight AS T1 JOIN airport AS T2 ON T1.origin_airport_id = T2.airport_id "
              "JOIN airline AS T3 ON T1.airline_id = T3.airline_id WHERE T2.city = '{other}'",
     "slots": "SELECT DISTINCT T1.city, T2.city AS other FROM airport AS T1 JOIN airport AS T2 ON T1.city != T2.city"},
    {"category": "set_op",
     "question": "What are the codes of the airports in {country} or {other}?",
     "query": "SELECT code FROM airport WHERE country = '{country}' UNION "
              "SELECT code FROM airport WHERE country = '{other}'",
     "slots": "SELECT DISTINCT T1.country, T2.country AS other FROM airport AS T1 JOIN airport AS T2 "
              "ON T1.country < T2.country"},
    {"category": "distinct",
     "question": "Which different countries have airports in the network?",
     "query": "SELECT DISTINCT country FROM airport"},
    {"category": "distinct",
     "question": "How many different destinations does {airline} fly to?",
     "query": "SELECT COUNT(DISTINCT T1.destination_airport_id) FROM flight AS T1 JOIN airline AS T2 "
              "ON T1.airline_id = T2.airline_id WHERE T2.name = '{airline}'",
     "slots": AIRLINE},
    {"category": "distinct",
     "question": "Which aircraft manufacturers build the planes used on flights from {city}?",
     "query": "SELECT DISTINCT T3.manufacturer FROM flight AS T1 JOIN airport AS T2 "
              "ON T1.origin_airport_id = T2.airport_id JOIN aircraft AS T3 ON T1.aircraft_id = T3.aircraft_id "
              "WHERE T2.city = '{city}'",
     "slots": ORIGIN_CITY},
    {"category": "like",
     "question": "Which aircraft models belong to the {family} family?",
     "query": "SELECT model FROM aircraft WHERE model LIKE '{family}%'",
     "slots": [{"family": "Boeing 737"}, {"family": "Airbus A32"}]},
    {"category": "like",
     "question": "Which airports have '{word}' in their name?",
     "query": "SELECT name FROM airport WHERE name LIKE '%{word}%'",
     "slots": [{"word": "International"}, {"word": "Kingsford"}, {"word": "Schiphol"}]},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "airline": {"one": "airline", "many": "airlines", "label": ("name", "name", "names"),
                "text": {"country": ("country", "countries")}, "number": {"founded_year": "founding year"}},
    "airport": {"one": "airport", "many": "airports", "label": ("name", "name", "names"),
                "text": {"country": ("country", "countries")}},
    "aircraft": {"one": "aircraft model", "many": "aircraft models", "label": ("model", "model", "models"),
                 "text": {"manufacturer": "manufacturer"}, "number": {"seats": "number of seats", "range_km": "range in kilometers"}},
    "flight": {"one": "flight", "many": "flights", "label": ("flight_number", "flight number", "flight numbers"),
               "number": {"price": "ticket price", "distance_km": "distance in kilometers", "duration_min": "duration in minutes"},
               "links": {"origin_airport_id": "origin airport", "destination_airport_id": "destination airport",
                         "aircraft_id": "aircraft model"}},
}
