"""Weather network: stations, their daily readings and the alerts they issued."""

from __future__ import annotations

import datetime
import random

from .pools import date_between, distinct_numbers

DB_ID = "weather_network"

SCHEMA = """
CREATE TABLE station (
    station_id INTEGER PRIMARY KEY,
    station_name TEXT NOT NULL,
    region TEXT NOT NULL,
    elevation_m INTEGER NOT NULL,
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    opened_yr INTEGER NOT NULL
);
CREATE TABLE reading (
    reading_id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL,
    reading_date DATE NOT NULL,
    temp_c REAL NOT NULL,
    precip_mm REAL NOT NULL,
    wind_kmh REAL NOT NULL,
    sky TEXT NOT NULL,
    FOREIGN KEY (station_id) REFERENCES station (station_id)
);
CREATE TABLE alert (
    alert_id INTEGER PRIMARY KEY,
    station_id INTEGER NOT NULL,
    alert_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    issued_date DATE NOT NULL,
    FOREIGN KEY (station_id) REFERENCES station (station_id)
);
"""

# The stations are fictional.
STATIONS = [  # name, region, elevation range in meters
    ("Harbor Point", "Coast", (2, 40)), ("Gull Island", "Coast", (5, 60)), ("Sandy Bay", "Coast", (1, 30)),
    ("Eagle Peak", "Highlands", (1800, 2900)), ("Pine Ridge", "Highlands", (900, 1700)),
    ("Glacier Pass", "Highlands", (2200, 3100)), ("Willow Flats", "Plains", (150, 400)),
    ("Prairie Center", "Plains", (200, 450)), ("Windmill Farm", "Plains", (120, 380)),
    ("Red Mesa", "Desert", (600, 1200)), ("Dry Creek", "Desert", (400, 900)),
    ("Mirror Lake", "Lakes", (300, 700)), ("Loon Lake", "Lakes", (350, 650)), ("Cedar Valley", "Valley", (80, 300)),
    ("Fox Hollow", "Valley", (100, 350)),
]
REGION_TEMP = {"Coast": 9.0, "Highlands": 4.0, "Plains": 6.0, "Desert": 14.0, "Lakes": 5.0, "Valley": 8.0}
ALERTS = {"Coast": ["Storm", "Flood", "High Wind"], "Highlands": ["Frost", "High Wind", "Storm"],
          "Plains": ["Storm", "Frost", "High Wind"], "Desert": ["Heatwave", "High Wind"],
          "Lakes": ["Frost", "Flood"], "Valley": ["Flood", "Frost", "Heatwave"]}
SEVERITIES, SEVERITY_WEIGHTS = ["Minor", "Moderate", "Severe"], [50, 35, 15]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    elevations = []
    for _, _, (low, high) in STATIONS:
        elevation = rng.randint(low, high)
        while elevation in elevations:  # distinct: "the highest station" has one answer
            elevation += 1
        elevations.append(elevation)
    opened = distinct_numbers(rng, 1948, 2015, len(STATIONS))
    station = [(sid, name, region, elevations[sid - 1], round(rng.uniform(44.0, 49.0), 3),
                round(rng.uniform(-124.0, -110.0), 3), opened[sid - 1])
               for sid, (name, region, _) in enumerate(STATIONS, start=1)]

    first = datetime.date(2024, 3, 4)
    dates = [(first + datetime.timedelta(days=7 * week)).isoformat() for week in range(8)]
    reading = []
    for sid, _, region, elevation, *_ in station:
        for day, date in enumerate(dates):
            temp = round(REGION_TEMP[region] + 1.2 * day - elevation / 160 + rng.uniform(-4, 4), 1)
            wet = rng.random() < (0.15 if region == "Desert" else 0.45)
            precip = round(rng.uniform(0.4, 28.0), 1) if wet else 0.0
            if wet:
                sky = "Snow" if temp < 0.5 else "Rain"
            else:
                sky = rng.choices(["Clear", "Cloudy", "Fog"], [45, 40, 15])[0]
            wind = round(rng.uniform(2, 35) + (15 if region in ("Coast", "Highlands") else 0), 1)
            reading.append((len(reading) + 1, sid, date, temp, precip, wind, sky))

    alert = []
    for aid in range(1, 31):
        sid = rng.randint(1, len(station))
        alert.append((aid, sid, rng.choice(ALERTS[station[sid - 1][2]]), rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
                      date_between(rng, "2024-03-01", "2024-04-30")))
    return {"station": station, "reading": reading, "alert": alert}


STATION = "SELECT station_name AS station FROM station"
REGION = "SELECT DISTINCT region FROM station"

TEMPLATES = [
    {"category": "where",
     "question": "Which stations are in the {region} region?",
     "query": "SELECT station_name FROM station WHERE region = '{region}'",
     "slots": REGION},
    {"category": "where",
     "question": "Which stations lie higher than {m} meters? Give their names and elevations.",
     "query": "SELECT station_name, elevation_m FROM station WHERE elevation_m > {m}",
     "slots": [{"m": 500}, {"m": 1000}, {"m": 2000}]},
    {"category": "where",
     "question": "How many readings recorded more than {mm} millimeters of precipitation?",
     "query": "SELECT COUNT(*) FROM reading WHERE precip_mm > {mm}",
     "slots": [{"mm": 10}, {"mm": 20}]},
    {"category": "join",
     "question": "What temperatures were recorded at {station}? List the dates and temperatures.",
     "query": "SELECT T1.reading_date, T1.temp_c FROM reading AS T1 JOIN station AS T2 "
              "ON T1.station_id = T2.station_id WHERE T2.station_name = '{station}'",
     "slots": STATION},
    {"category": "join",
     "question": "What is the highest wind speed recorded at {station}?",
     "query": "SELECT MAX(T1.wind_kmh) FROM reading AS T1 JOIN station AS T2 ON T1.station_id = T2.station_id "
              "WHERE T2.station_name = '{station}'",
     "slots": STATION},
    {"category": "join",
     "question": "Which stations issued a {kind} alert? Give the station names and issue dates.",
     "query": "SELECT T2.station_name, T1.issued_date FROM alert AS T1 JOIN station AS T2 "
              "ON T1.station_id = T2.station_id WHERE T1.alert_type = '{kind}'",
     "slots": "SELECT DISTINCT alert_type AS kind FROM alert"},
    {"category": "join",
     "question": "On which dates did {station} report {sky} skies?",
     "query": "SELECT T1.reading_date FROM reading AS T1 JOIN station AS T2 ON T1.station_id = T2.station_id "
              "WHERE T2.station_name = '{station}' AND T1.sky = '{sky}'",
     "slots": "SELECT DISTINCT T2.station_name AS station, T1.sky FROM reading AS T1 JOIN station AS T2 "
              "ON T1.station_id = T2.station_id"},
    {"category": "aggregate",
     "question": "What was the average temperature across all stations on {date}?",
     "query": "SELECT AVG(temp_c) FROM reading WHERE reading_date = '{date}'",
     "slots": "SELECT DISTINCT reading_date AS date FROM reading"},
    {"category": "aggregate",
     "question": "How many alerts with severity {severity} were issued?",
     "query": "SELECT COUNT(*) FROM alert WHERE severity = '{severity}'",
     "slots": "SELECT DISTINCT severity FROM alert"},
    {"category": "group_by",
     "question": "What is the average temperature recorded at each station?",
     "query": "SELECT T2.station_name, AVG(T1.temp_c) FROM reading AS T1 JOIN station AS T2 "
              "ON T1.station_id = T2.station_id GROUP BY T2.station_name"},
    {"category": "group_by",
     "question": "How many stations are there in each region?",
     "query": "SELECT region, COUNT(*) FROM station GROUP BY region"},
    {"category": "order_limit",
     "question": "Which station has the highest elevation?",
     "query": "SELECT station_name FROM station ORDER BY elevation_m DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "Which {n} stations were opened first? Give their names and opening years.",
     "query": "SELECT station_name, opened_yr FROM station ORDER BY opened_yr LIMIT {n}",
     "slots": [{"n": 2}, {"n": 3}, {"n": 5}]},
]

ENTITIES = {
    "station": {
        "one": "station", "many": "stations",
        "label": ("station_name", "name", "names"),
        "text": {"region": ("region", "regions")},
        "number": {"elevation_m": "elevation in meters", "latitude": "latitude", "longitude": "longitude",
                   "opened_yr": "opening year"},
    },
    "reading": {
        "one": "reading", "many": "readings",
        "label": None,
        "text": {"sky": ("sky condition", "sky conditions")},
        "number": {"precip_mm": "precipitation in millimeters", "temp_c": "temperature in degrees Celsius",
                   "wind_kmh": "wind speed in kilometers per hour"},
    },
    "alert": {
        "one": "alert", "many": "alerts",
        "label": None,
        "text": {"alert_type": ("alert type", "alert types"), "severity": ("severity", "severities")},
        "number": {},
    },
}
