"""Bookstore: authors, books, customers, orders and order lines (train)."""

from __future__ import annotations

import random

from .pools import CITIES, date_between, distinct_numbers, person_names

DB_ID = "bookstore"

SCHEMA = """
CREATE TABLE author (
    author_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT NOT NULL,
    birth_year INTEGER NOT NULL
);
CREATE TABLE book (
    book_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    genre TEXT NOT NULL,
    price REAL NOT NULL,
    pages INTEGER NOT NULL,
    publication_year INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    FOREIGN KEY (author_id) REFERENCES author (author_id)
);
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    member_since DATE NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
);
CREATE TABLE order_item (
    item_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    book_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    FOREIGN KEY (order_id) REFERENCES orders (order_id),
    FOREIGN KEY (book_id) REFERENCES book (book_id)
);
"""

GENRES = ["Mystery", "Science Fiction", "Fantasy", "Romance", "History", "Biography", "Poetry", "Thriller"]
COUNTRIES = ["United States", "United Kingdom", "Canada", "Ireland", "Nigeria", "India", "Australia", "France",
             "Japan", "Brazil"]
TITLE_ADJECTIVES = ["Silent", "Hidden", "Last", "Golden", "Broken", "Distant", "Crimson", "Forgotten", "Endless",
                    "Secret", "Winter", "Burning", "Quiet", "Wild", "Northern", "Paper"]
TITLE_NOUNS = ["Harbor", "Garden", "River", "Empire", "Lighthouse", "Orchard", "Signal", "Station", "Compass",
               "Mirror", "Kingdom", "Archive", "Island", "Frontier", "Letters", "Shadows"]
STATUSES, STATUS_WEIGHTS = ["delivered", "shipped", "processing", "cancelled"], [70, 12, 8, 10]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    author_names = person_names(rng, 24)
    author = [(aid, author_names[aid - 1], rng.choice(COUNTRIES), rng.randint(1940, 1995)) for aid in range(1, 25)]
    # most authors stay in one genre, some write in two
    genres_of = {aid: rng.sample(GENRES, rng.choice([1, 1, 2])) for aid in range(1, 25)}

    titles = [f"The {adjective} {noun}" for adjective in TITLE_ADJECTIVES for noun in TITLE_NOUNS]
    titles = rng.sample(titles, 70)
    prices = rng.sample([dollars + cents for dollars in range(7, 46) for cents in (0.49, 0.99)], 70)
    pages = distinct_numbers(rng, 120, 900, 70)
    book = []
    for bid in range(1, 71):
        aid = rng.randint(1, 24) if bid > 24 else bid  # every author has at least one book
        book.append((bid, titles[bid - 1], rng.choice(genres_of[aid]), prices[bid - 1], pages[bid - 1],
                     rng.randint(1985, 2024), aid))

    customer_names = person_names(rng, 90)
    customer = [(cid, customer_names[cid - 1], rng.choice(CITIES), date_between(rng, "2019-01-01", "2023-12-31"))
                for cid in range(1, 91)]

    buyers = rng.sample(range(1, 91), 75)  # the other 15 never ordered
    orders = [(oid, rng.choice(buyers), date_between(rng, "2023-01-01", "2024-06-30"),
               rng.choices(STATUSES, STATUS_WEIGHTS)[0]) for oid in range(1, 221)]
    orders.sort(key=lambda o: o[2])
    orders = [(oid, cid, day, status) for oid, (_, cid, day, status) in enumerate(orders, start=1)]

    stocked = rng.sample(range(1, 71), 64)  # the other 6 were never ordered
    order_item = []
    for oid, *_ in orders:
        for bid in sorted(rng.sample(stocked, rng.choice([1, 1, 2, 2, 3, 4]))):
            order_item.append((len(order_item) + 1, oid, bid, rng.choice([1, 1, 1, 2, 3])))
    return {"author": author, "book": book, "customer": customer, "orders": orders, "order_item": order_item}


AUTHOR = "SELECT name AS author FROM author"
CUSTOMER = "SELECT name AS customer FROM customer"
GENRE = "SELECT DISTINCT genre FROM book"

TEMPLATES = [
    {"category": "where",
     "question": "What are the titles of books that cost less than {price} dollars?",
     "query": "SELECT title FROM book WHERE price < {price}",
     "slots": [{"price": 10}, {"price": 12}, {"price": 15}]},
    {"category": "where",
     "question": "Which books were published in {year}? List their titles.",
     "query": "SELECT title FROM book WHERE publication_year = {year}",
     "slots": "SELECT DISTINCT publication_year AS year FROM book"},
    {"category": "where",
     "question": "Give the names of the customers from {city} who became members after {year}.",
     "query": "SELECT name FROM customer WHERE city = '{city}' AND member_since > '{year}-12-31'",
     "slots": "SELECT DISTINCT city, substr(member_since, 1, 4) AS year FROM customer"},
    {"category": "join",
     "question": "What are the titles of the books written by {author}?",
     "query": "SELECT T1.title FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "WHERE T2.name = '{author}'",
     "slots": AUTHOR},
    {"category": "join",
     "question": "Who wrote {title}?",
     "query": "SELECT T2.name FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "WHERE T1.title = '{title}'",
     "slots": "SELECT title FROM book"},
    {"category": "join",
     "question": "What are the dates and statuses of the orders placed by {customer}?",
     "query": "SELECT T1.order_date, T1.status FROM orders AS T1 JOIN customer AS T2 "
              "ON T1.customer_id = T2.customer_id WHERE T2.name = '{customer}'",
     "slots": CUSTOMER},
    {"category": "multi_join",
     "question": "Which books has {customer} ordered? List the titles.",
     "query": "SELECT T4.title FROM customer AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id "
              "JOIN order_item AS T3 ON T2.order_id = T3.order_id JOIN book AS T4 ON T3.book_id = T4.book_id "
              "WHERE T1.name = '{customer}'",
     "slots": CUSTOMER},
    {"category": "multi_join",
     "question": "How many copies of books by {author} have been sold?",
     "query": "SELECT SUM(T3.quantity) FROM author AS T1 JOIN book AS T2 ON T1.author_id = T2.author_id "
              "JOIN order_item AS T3 ON T2.book_id = T3.book_id WHERE T1.name = '{author}'",
     "slots": AUTHOR},
    {"category": "multi_join",
     "question": "What are the titles of the books in orders with status {status}?",
     "query": "SELECT DISTINCT T3.title FROM orders AS T1 JOIN order_item AS T2 ON T1.order_id = T2.order_id "
              "JOIN book AS T3 ON T2.book_id = T3.book_id WHERE T1.status = '{status}'",
     "slots": [{"status": "processing"}, {"status": "shipped"}]},
    {"category": "aggregate",
     "question": "How many books are there in the {genre} genre?",
     "query": "SELECT COUNT(*) FROM book WHERE genre = '{genre}'",
     "slots": GENRE},
    {"category": "aggregate",
     "question": "What is the average price of {genre} books?",
     "query": "SELECT AVG(price) FROM book WHERE genre = '{genre}'",
     "slots": GENRE},
    {"category": "aggregate",
     "question": "What are the lowest and highest prices of books published after {year}?",
     "query": "SELECT MIN(price), MAX(price) FROM book WHERE publication_year > {year}",
     "slots": [{"year": 2000}, {"year": 2010}, {"year": 2020}]},
    {"category": "aggregate",
     "question": "How many orders has {customer} placed?",
     "query": "SELECT COUNT(*) FROM orders AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id "
              "WHERE T2.name = '{customer}'",
     "slots": CUSTOMER},
    {"category": "group_by",
     "question": "How many books has each author written? Show the author name and the number of books.",
     "query": "SELECT T2.name, COUNT(*) FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "GROUP BY T2.name"},
    {"category": "group_by",
     "question": "Which genres have an average book price above {price} dollars?",
     "query": "SELECT genre FROM book GROUP BY genre HAVING AVG(price) > {price}",
     "slots": [{"price": 20}, {"price": 25}, {"price": 30}]},
    {"category": "group_by",
     "question": "Find the names of customers who have placed at least {n} orders.",
     "query": "SELECT T2.name FROM orders AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id "
              "GROUP BY T1.customer_id HAVING COUNT(*) >= {n}",
     "slots": [{"n": 4}, {"n": 5}]},
    {"category": "group_by",
     "question": "How many orders are there with each status?",
     "query": "SELECT status, COUNT(*) FROM orders GROUP BY status"},
    {"category": "order_limit",
     "question": "What is the title of the most expensive book?",
     "query": "SELECT title FROM book ORDER BY price DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the titles and page counts of the {n} longest books.",
     "query": "SELECT title, pages FROM book ORDER BY pages DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "List the titles of the {genre} books from the cheapest to the most expensive.",
     "query": "SELECT title FROM book WHERE genre = '{genre}' ORDER BY price",
     "slots": GENRE},
    {"category": "order_limit",
     "question": "Which author has written the most books?",
     "query": "SELECT T2.name FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "GROUP BY T2.name ORDER BY COUNT(*) DESC LIMIT 1"},
    {"category": "nested",
     "question": "Which books cost more than the average price of all books?",
     "query": "SELECT title FROM book WHERE price > (SELECT AVG(price) FROM book)"},
    {"category": "nested",
     "question": "What are the names of the customers who have never placed an order?",
     "query": "SELECT name FROM customer WHERE customer_id NOT IN (SELECT customer_id FROM orders)"},
    {"category": "nested",
     "question": "What are the titles of the books that have never been ordered?",
     "query": "SELECT title FROM book WHERE book_id NOT IN (SELECT book_id FROM order_item)"},
    {"category": "nested",
     "question": "Which authors have written a book in the {genre} genre?",
     "query": "SELECT name FROM author WHERE author_id IN (SELECT author_id FROM book WHERE genre = '{genre}')",
     "slots": GENRE},
    {"category": "set_op",
     "question": "Which authors have written both {genre} and {other} books?",
     "query": "SELECT T2.name FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "WHERE T1.genre = '{genre}' INTERSECT SELECT T2.name FROM book AS T1 JOIN author AS T2 "
              "ON T1.author_id = T2.author_id WHERE T1.genre = '{other}'",
     "slots": "SELECT DISTINCT T1.genre, T2.genre AS other FROM book AS T1 JOIN book AS T2 "
              "ON T1.genre < T2.genre"},
    {"category": "set_op",
     "question": "What are the titles of the books written by {author} or priced above 40 dollars?",
     "query": "SELECT T1.title FROM book AS T1 JOIN author AS T2 ON T1.author_id = T2.author_id "
              "WHERE T2.name = '{author}' UNION SELECT title FROM book WHERE price > 40",
     "slots": AUTHOR},
    {"category": "set_op",
     "question": "Which customers from {city} have never had an order cancelled?",
     "query": "SELECT name FROM customer WHERE city = '{city}' EXCEPT SELECT T2.name FROM orders AS T1 "
              "JOIN customer AS T2 ON T1.customer_id = T2.customer_id WHERE T1.status = 'cancelled'",
     "slots": "SELECT DISTINCT city FROM customer"},
    {"category": "distinct",
     "question": "What are the distinct genres of the books in the store?",
     "query": "SELECT DISTINCT genre FROM book"},
    {"category": "distinct",
     "question": "Which different countries do the authors come from?",
     "query": "SELECT DISTINCT country FROM author"},
    {"category": "distinct",
     "question": "How many different books has {customer} ordered?",
     "query": "SELECT COUNT(DISTINCT T3.book_id) FROM customer AS T1 JOIN orders AS T2 "
              "ON T1.customer_id = T2.customer_id JOIN order_item AS T3 ON T2.order_id = T3.order_id "
              "WHERE T1.name = '{customer}'",
     "slots": CUSTOMER},
    {"category": "like",
     "question": "Which books have '{word}' in their title?",
     "query": "SELECT title FROM book WHERE title LIKE '%{word}%'",
     "slots": [{"word": word} for word in ("Garden", "River", "Golden", "Winter", "Island")]},
    {"category": "like",
     "question": "Which orders were placed in {month} 2024? Give the order ids and dates.",
     "query": "SELECT order_id, order_date FROM orders WHERE order_date LIKE '2024-{mm}%'",
     "slots": [{"month": "January", "mm": "01"}, {"month": "March", "mm": "03"}, {"month": "May", "mm": "05"}]},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "author": {"one": "author", "many": "authors", "label": ("name", "name", "names"),
               "text": {"country": ("country", "countries")}, "number": {"birth_year": "birth year"}},
    "book": {"one": "book", "many": "books", "label": ("title", "title", "titles"),
             "text": {"genre": "genre"}, "number": {"price": "price", "pages": "number of pages", "publication_year": "publication year"}},
    "customer": {"one": "customer", "many": "customers", "label": ("name", "name", "names"),
                 "text": {"city": ("city", "cities")}},
    "orders": {"one": "order", "many": "orders", "label": None, "text": {"status": ("status", "statuses")}},
    "order_item": {"one": "order item", "many": "order items", "label": None, "number": {"quantity": "quantity"}},
}
