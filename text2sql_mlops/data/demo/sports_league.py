"""Sports league: teams, players, one season of games and the goals scored (train)."""

from __future__ import annotations

import datetime
import random

from .pools import distinct_numbers, person_names

DB_ID = "sports_league"

SCHEMA = """
CREATE TABLE team (
    team_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    stadium TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    founded_year INTEGER NOT NULL
);
CREATE TABLE player (
    player_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    position TEXT NOT NULL,
    age INTEGER NOT NULL,
    nationality TEXT NOT NULL,
    jersey_number INTEGER NOT NULL,
    team_id INTEGER NOT NULL,
    FOREIGN KEY (team_id) REFERENCES team (team_id)
);
CREATE TABLE game (
    game_id INTEGER PRIMARY KEY,
    game_date DATE NOT NULL,
    home_team_id INTEGER NOT NULL,
    away_team_id INTEGER NOT NULL,
    home_score INTEGER NOT NULL,
    away_score INTEGER NOT NULL,
    attendance INTEGER NOT NULL,
    FOREIGN KEY (home_team_id) REFERENCES team (team_id),
    FOREIGN KEY (away_team_id) REFERENCES team (team_id)
);
CREATE TABLE goal (
    goal_id INTEGER PRIMARY KEY,
    game_id INTEGER NOT NULL,
    player_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    FOREIGN KEY (game_id) REFERENCES game (game_id),
    FOREIGN KEY (player_id) REFERENCES player (player_id)
);
"""

TEAMS = [  # name, city, stadium
    ("Northport Mariners", "Northport", "Harbor Stadium"), ("Eastfield United", "Eastfield", "Eastfield Arena"),
    ("Redwood Rangers", "Redwood", "Pine Ground"), ("Lakeside Athletic", "Lakeside", "Lakeside Park"),
    ("Stonebridge City", "Stonebridge", "Bridge Road"), ("Westvale Wanderers", "Westvale", "Vale Stadium"),
    ("Kingsford Town", "Kingsford", "Crown Ground"), ("Ashby Albion", "Ashby", "Albion Park"),
    ("Millbrook Rovers", "Millbrook", "Mill Lane"), ("Fairhaven United", "Fairhaven", "Seafront Stadium"),
]
# a squad of 12: position and how likely that position is to score
SQUAD = [("Goalkeeper", 0)] * 2 + [("Defender", 1)] * 4 + [("Midfielder", 3)] * 4 + [("Forward", 6)] * 2
NATIONALITIES = ["England", "Spain", "France", "Brazil", "Nigeria", "Japan", "Germany", "Argentina",
                 "Netherlands", "Ghana"]
GOALS, GOAL_WEIGHTS = [0, 1, 2, 3, 4], [22, 32, 25, 14, 7]
SEASON_START = datetime.date(2023, 8, 12)


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    capacities = distinct_numbers(rng, 80, 450, len(TEAMS))
    founded = distinct_numbers(rng, 1878, 1975, len(TEAMS))
    team = [(tid, name, city, stadium, capacities[tid - 1] * 100, founded[tid - 1])
            for tid, (name, city, stadium) in enumerate(TEAMS, start=1)]

    names = person_names(rng, len(TEAMS) * len(SQUAD))
    player, squads = [], {}
    for tid in range(1, len(TEAMS) + 1):
        numbers = sorted(rng.sample(range(1, 31), len(SQUAD)))
        for (position, _), number in zip(SQUAD, numbers):
            pid = len(player) + 1
            player.append((pid, names[pid - 1], position, rng.randint(18, 36), rng.choice(NATIONALITIES), number, tid))
            squads.setdefault(tid, []).append(pid)

    # double round robin by the circle method: 18 weekly rounds of 5 games
    order, rounds = list(range(1, len(TEAMS) + 1)), []
    for _ in range(len(TEAMS) - 1):
        rounds.append([(order[i], order[-1 - i]) for i in range(len(TEAMS) // 2)])
        order = [order[0], order[-1], *order[1:-1]]
    rounds += [[(away, home) for home, away in fixtures] for fixtures in rounds]

    game, goal = [], []
    for week, fixtures in enumerate(rounds):
        day = (SEASON_START + datetime.timedelta(weeks=week)).isoformat()
        for home, away in fixtures:
            gid = len(game) + 1
            score = {home: rng.choices(GOALS, GOAL_WEIGHTS)[0], away: rng.choices(GOALS, [30, 35, 20, 10, 5])[0]}
            capacity = team[home - 1][4]
            game.append((gid, day, home, away, score[home], score[away], int(capacity * rng.uniform(0.55, 1.0))))
            scorers = [rng.choices(squads[tid], [SQUAD[i][1] for i in range(len(SQUAD))])[0]
                       for tid in (home, away) for _ in range(score[tid])]
            minutes = sorted(rng.sample(range(1, 91), len(scorers)))
            goal += [(len(goal) + i + 1, gid, pid, minute) for i, (pid, minute) in enumerate(zip(scorers, minutes))]
    return {"team": team, "player": player, "game": game, "goal": goal}


TEAM = "SELECT name AS team FROM team"
PLAYER = "SELECT name AS player FROM player"
NATIONALITY = "SELECT DISTINCT nationality AS country FROM player"

TEMPLATES = [
    {"category": "where",
     "question": "Which players are older than {age}?",
     "query": "SELECT name FROM player WHERE age > {age}",
     "slots": [{"age": 30}, {"age": 32}, {"age": 34}]},
    {"category": "where",
     "question": "List the names and jersey numbers of the players from {country}.",
     "query": "SELECT name, jersey_number FROM player WHERE nationality = '{country}'",
     "slots": NATIONALITY},
    {"category": "where",
     "question": "On which dates were games played in front of more than {n} spectators?",
     "query": "SELECT game_date FROM game WHERE attendance > {n}",
     "slots": [{"n": 30000}, {"n": 35000}, {"n": 40000}]},
    {"category": "join",
     "question": "Who plays for {team}?",
     "query": "SELECT T1.name FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "join",
     "question": "What is the home stadium of the team {player} plays for?",
     "query": "SELECT T2.stadium FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "WHERE T1.name = '{player}'",
     "slots": PLAYER},
    {"category": "join",
     "question": "On which dates did {team} play at home?",
     "query": "SELECT T1.game_date FROM game AS T1 JOIN team AS T2 ON T1.home_team_id = T2.team_id "
              "WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "multi_join",
     "question": "What was the score when {team} hosted {other}?",
     "query": "SELECT T1.home_score, T1.away_score FROM game AS T1 JOIN team AS T2 ON T1.home_team_id = T2.team_id "
              "JOIN team AS T3 ON T1.away_team_id = T3.team_id WHERE T2.name = '{team}' AND T3.name = '{other}'",
     "slots": "SELECT T1.name AS team, T2.name AS other FROM team AS T1 JOIN team AS T2 ON T1.team_id != T2.team_id"},
    {"category": "multi_join",
     "question": "Which players of {team} have scored a goal?",
     "query": "SELECT DISTINCT T1.name FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "JOIN goal AS T3 ON T1.player_id = T3.player_id WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "multi_join",
     "question": "Who scored in the games played on {date}, and in which minute?",
     "query": "SELECT T3.name, T1.minute FROM goal AS T1 JOIN game AS T2 ON T1.game_id = T2.game_id "
              "JOIN player AS T3 ON T1.player_id = T3.player_id WHERE T2.game_date = '{date}'",
     "slots": "SELECT DISTINCT game_date AS date FROM game"},
    {"category": "aggregate",
     "question": "How many goals has {player} scored?",
     "query": "SELECT COUNT(*) FROM goal AS T1 JOIN player AS T2 ON T1.player_id = T2.player_id "
              "WHERE T2.name = '{player}'",
     "slots": "SELECT DISTINCT T2.name AS player FROM goal AS T1 JOIN player AS T2 ON T1.player_id = T2.player_id"},
    {"category": "aggregate",
     "question": "What is the average age of the players of {team}?",
     "query": "SELECT AVG(T1.age) FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "aggregate",
     "question": "How many spectators attended the home games of {team} in total?",
     "query": "SELECT SUM(T1.attendance) FROM game AS T1 JOIN team AS T2 ON T1.home_team_id = T2.team_id "
              "WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "aggregate",
     "question": "What is the largest number of goals a home team scored in one game?",
     "query": "SELECT MAX(home_score) FROM game"},
    {"category": "group_by",
     "question": "How many players play in each position?",
     "query": "SELECT position, COUNT(*) FROM player GROUP BY position"},
    {"category": "group_by",
     "question": "Which nationalities have more than {n} players in the league?",
     "query": "SELECT nationality FROM player GROUP BY nationality HAVING COUNT(*) > {n}",
     "slots": [{"n": 10}, {"n": 12}, {"n": 14}]},
    {"category": "group_by",
     "question": "Which players have scored at least {n} goals?",
     "query": "SELECT T2.name FROM goal AS T1 JOIN player AS T2 ON T1.player_id = T2.player_id "
              "GROUP BY T1.player_id HAVING COUNT(*) >= {n}",
     "slots": [{"n": 6}, {"n": 8}, {"n": 10}]},
    {"category": "group_by",
     "question": "What is the average attendance at each stadium?",
     "query": "SELECT T2.stadium, AVG(T1.attendance) FROM game AS T1 JOIN team AS T2 "
              "ON T1.home_team_id = T2.team_id GROUP BY T2.stadium"},
    {"category": "order_limit",
     "question": "Who is the top scorer of the league?",
     "query": "SELECT T2.name FROM goal AS T1 JOIN player AS T2 ON T1.player_id = T2.player_id "
              "GROUP BY T1.player_id ORDER BY COUNT(*) DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "Which {n} games had the highest attendance? Give their dates and attendance.",
     "query": "SELECT game_date, attendance FROM game ORDER BY attendance DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "List the team names from the oldest club to the youngest.",
     "query": "SELECT name FROM team ORDER BY founded_year"},
    {"category": "order_limit",
     "question": "Who is the youngest player of {team}?",
     "query": "SELECT T1.name FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "WHERE T2.name = '{team}' ORDER BY T1.age LIMIT 1",
     "slots": TEAM},
    {"category": "nested",
     "question": "Which players are older than the average age of all players?",
     "query": "SELECT name FROM player WHERE age > (SELECT AVG(age) FROM player)"},
    {"category": "nested",
     "question": "Which players in the {position} position have never scored a goal?",
     "query": "SELECT name FROM player WHERE position = '{position}' AND player_id NOT IN "
              "(SELECT player_id FROM goal)",
     "slots": [{"position": "Defender"}, {"position": "Midfielder"}, {"position": "Forward"}]},
    {"category": "nested",
     "question": "Which teams play in a stadium larger than the stadium of {team}?",
     "query": "SELECT name FROM team WHERE capacity > (SELECT capacity FROM team WHERE name = '{team}')",
     "slots": TEAM},
    {"category": "nested",
     "question": "Which teams have a player from {country}?",
     "query": "SELECT name FROM team WHERE team_id IN (SELECT team_id FROM player WHERE nationality = '{country}')",
     "slots": NATIONALITY},
    {"category": "set_op",
     "question": "Which nationalities are represented in both {team} and {other}?",
     "query": "SELECT T1.nationality FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "WHERE T2.name = '{team}' INTERSECT SELECT T1.nationality FROM player AS T1 JOIN team AS T2 "
              "ON T1.team_id = T2.team_id WHERE T2.name = '{other}'",
     "slots": "SELECT T1.name AS team, T2.name AS other FROM team AS T1 JOIN team AS T2 ON T1.team_id < T2.team_id"},
    {"category": "set_op",
     "question": "Which players of {team} have not scored any goal?",
     "query": "SELECT T1.name FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id WHERE T2.name = '{team}' "
              "EXCEPT SELECT T1.name FROM player AS T1 JOIN goal AS T2 ON T1.player_id = T2.player_id",
     "slots": TEAM},
    {"category": "set_op",
     "question": "List the names of the players who are from {country} or play for {team}.",
     "query": "SELECT name FROM player WHERE nationality = '{country}' UNION SELECT T1.name FROM player AS T1 "
              "JOIN team AS T2 ON T1.team_id = T2.team_id WHERE T2.name = '{team}'",
     "slots": "SELECT DISTINCT T1.nationality AS country, T2.name AS team FROM player AS T1 JOIN team AS T2 "
              "ON T1.team_id != T2.team_id"},
    {"category": "distinct",
     "question": "What are the different positions the players play in?",
     "query": "SELECT DISTINCT position FROM player"},
    {"category": "distinct",
     "question": "Which different nationalities play for {team}?",
     "query": "SELECT DISTINCT T1.nationality FROM player AS T1 JOIN team AS T2 ON T1.team_id = T2.team_id "
              "WHERE T2.name = '{team}'",
     "slots": TEAM},
    {"category": "distinct",
     "question": "How many distinct nationalities are there in the league?",
     "query": "SELECT COUNT(DISTINCT nationality) FROM player"},
    {"category": "like",
     "question": "Which teams have a name ending in '{suffix}'?",
     "query": "SELECT name FROM team WHERE name LIKE '%{suffix}'",
     "slots": [{"suffix": "United"}, {"suffix": "Rovers"}, {"suffix": "City"}]},
    {"category": "like",
     "question": "How many games were played in {month} 2023?",
     "query": "SELECT COUNT(*) FROM game WHERE game_date LIKE '2023-{mm}%'",
     "slots": [{"month": "September", "mm": "09"}, {"month": "October", "mm": "10"},
               {"month": "November", "mm": "11"}]},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "team": {"one": "team", "many": "teams", "label": ("name", "name", "names"),
             "text": {"city": ("city", "cities")}, "number": {"capacity": "stadium capacity", "founded_year": "founding year"}},
    "player": {"one": "player", "many": "players", "label": ("name", "name", "names"),
               "text": {"position": "position", "nationality": ("nationality", "nationalities")},
               "number": {"age": "age", "jersey_number": "jersey number"}},
    "game": {"one": "game", "many": "games", "label": None, "number": {"attendance": "attendance"},
             "links": {"home_team_id": "home team", "away_team_id": "away team"}},
    "goal": {"one": "goal", "many": "goals", "label": None, "number": {"minute": "minute"}},
}
