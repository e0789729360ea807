"""Online shop: customers, products, orders and the items of each order."""

from __future__ import annotations

import random

from .pools import FIRST_NAMES, LAST_NAMES, date_between, distinct_numbers

DB_ID = "online_shop"

SCHEMA = """
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    country TEXT NOT NULL,
    account_type TEXT NOT NULL,
    signup_yr INTEGER NOT NULL
);
CREATE TABLE product (
    product_id INTEGER PRIMARY KEY,
    prod_name TEXT NOT NULL,
    category TEXT NOT NULL,
    brand TEXT NOT NULL,
    unit_price REAL NOT NULL,
    stock_qty INTEGER NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    ship_method TEXT NOT NULL,
    shipping_fee REAL NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
);
CREATE TABLE order_item (
    item_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    FOREIGN KEY (order_id) REFERENCES orders (order_id),
    FOREIGN KEY (product_id) REFERENCES product (product_id)
);
"""

# The brands are fictional.
PRODUCTS = [  # name, category, brand, price in dollars
    ("Wireless Earbuds", "Electronics", "Voltra", 59), ("Bluetooth Speaker", "Electronics", "Voltra", 45),
    ("USB-C Charger", "Electronics", "Nordlys", 19), ("Smart Watch", "Electronics", "Nordlys", 189),
    ("Noise Cancelling Headphones", "Electronics", "Voltra", 229),
    ("Portable Power Bank", "Electronics", "Nordlys", 35),
    ("Chef Knife", "Kitchen", "Kesselhaus", 74), ("Cast Iron Skillet", "Kitchen", "Kesselhaus", 39),
    ("Espresso Machine", "Kitchen", "Brio", 349), ("Glass Food Containers", "Kitchen", "Brio", 28),
    ("Electric Kettle", "Kitchen", "Brio", 42), ("Bamboo Cutting Board", "Kitchen", "Kesselhaus", 22),
    ("Yoga Mat", "Sports", "Peakline", 31), ("Running Shoes", "Sports", "Peakline", 119),
    ("Adjustable Dumbbells", "Sports", "Peakline", 199), ("Water Bottle", "Sports", "Trailmark", 17),
    ("Camping Tent", "Sports", "Trailmark", 159), ("Hiking Backpack", "Sports", "Trailmark", 89),
    ("Wooden Puzzle", "Toys", "Tumbleweed", 24), ("Building Blocks Set", "Toys", "Tumbleweed", 49),
    ("Remote Control Car", "Toys", "Voltra", 64), ("Plush Bear", "Toys", "Tumbleweed", 21),
    ("Board Game Night Pack", "Toys", "Tumbleweed", 37), ("Garden Hose", "Garden", "Greenway", 33),
    ("Pruning Shears", "Garden", "Greenway", 26), ("Solar Garden Lights", "Garden", "Greenway", 38),
    ("Raised Planter Box", "Garden", "Kesselhaus", 79), ("Bird Feeder", "Garden", "Greenway", 18),
    ("Wool Sweater", "Clothing", "Aster", 68), ("Rain Jacket", "Clothing", "Trailmark", 95),
    ("Cotton T-Shirt", "Clothing", "Aster", 16), ("Denim Jeans", "Clothing", "Aster", 54),
    ("Winter Gloves", "Clothing", "Aster", 23), ("Desk Lamp", "Home Office", "Nordlys", 36),
    ("Ergonomic Chair", "Home Office", "Brio", 289), ("Standing Desk", "Home Office", "Brio", 399),
    ("Wireless Mouse", "Home Office", "Voltra", 27), ("Mechanical Keyboard", "Home Office", "Voltra", 99),
]
COUNTRIES = ["United States", "Canada", "Germany", "France", "Spain", "Poland", "Sweden", "Ireland"]
STATUSES, STATUS_WEIGHTS = ["Delivered", "Shipped", "Pending", "Cancelled", "Returned"], [55, 18, 12, 9, 6]
SHIPPING = {"Standard": 4.99, "Express": 12.99, "Pickup": 0.0}


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    usernames: list[str] = []
    while len(usernames) < 55:
        name = f"{rng.choice(FIRST_NAMES).lower()}_{rng.choice(LAST_NAMES)[0].lower()}{rng.randint(10, 99)}"
        if name not in usernames:
            usernames.append(name)
    customer = [(cid, usernames[cid - 1], rng.choices(COUNTRIES, [30, 12, 14, 10, 10, 8, 8, 8])[0],
                 rng.choices(["Standard", "Premium"], [75, 25])[0], rng.randint(2016, 2024)) for cid in range(1, 56)]

    cents = distinct_numbers(rng, 0, 99, len(PRODUCTS))
    product = [(pid, name, category, brand, round(price - 1 + cents[pid - 1] / 100, 2), rng.randint(0, 250))
               for pid, (name, category, brand, price) in enumerate(PRODUCTS, start=1)]

    orders = []
    for oid in range(1, 81):
        method = rng.choices(list(SHIPPING), [60, 25, 15])[0]
        orders.append((oid, rng.randint(1, len(customer)), date_between(rng, "2024-01-01", "2024-08-31"),
                       rng.choices(STATUSES, STATUS_WEIGHTS)[0], method, SHIPPING[method]))

    order_item, in_order = [], {oid: [] for oid in range(1, 81)}
    while len(order_item) < 120:
        # every order has at least one item, then extra items go to random orders
        oid = len(order_item) + 1 if len(order_item) < 80 else rng.randint(1, 80)
        pid = rng.randint(1, len(product))
        if pid in in_order[oid]:
            continue
        in_order[oid].append(pid)
        order_item.append((len(order_item) + 1, oid, pid, rng.choice([1, 1, 1, 2, 2, 3, 4])))
    return {"customer": customer, "product": product, "orders": orders, "order_item": order_item}


USER = "SELECT username AS user FROM customer"
CATEGORY = "SELECT DISTINCT category FROM product"

TEMPLATES = [
    {"category": "where",
     "question": "What are the usernames of the customers from {country}?",
     "query": "SELECT username FROM customer WHERE country = '{country}'",
     "slots": "SELECT DISTINCT country FROM customer"},
    {"category": "where",
     "question": "List the names and prices of the products in the {category} category.",
     "query": "SELECT prod_name, unit_price FROM product WHERE category = '{category}'",
     "slots": CATEGORY},
    {"category": "where",
     "question": "Which products have fewer than {n} units in stock?",
     "query": "SELECT prod_name FROM product WHERE stock_qty < {n}",
     "slots": [{"n": 20}, {"n": 40}, {"n": 60}]},
    {"category": "join",
     "question": "What are the dates and statuses of the orders placed by {user}?",
     "query": "SELECT T1.order_date, T1.status FROM orders AS T1 JOIN customer AS T2 "
              "ON T1.customer_id = T2.customer_id WHERE T2.username = '{user}'",
     "slots": USER},
    {"category": "join",
     "question": "How many orders placed by customers from {country} have the status {status}?",
     "query": "SELECT COUNT(*) FROM orders AS T1 JOIN customer AS T2 ON T1.customer_id = T2.customer_id "
              "WHERE T2.country = '{country}' AND T1.status = '{status}'",
     "slots": "SELECT DISTINCT T2.country, T1.status FROM orders AS T1 JOIN customer AS T2 "
              "ON T1.customer_id = T2.customer_id"},
    {"category": "join",
     "question": "Which products are in order number {order_id}? Give their names and the quantities.",
     "query": "SELECT T2.prod_name, T1.quantity FROM order_item AS T1 JOIN product AS T2 "
              "ON T1.product_id = T2.product_id WHERE T1.order_id = {order_id}",
     "slots": "SELECT order_id FROM orders"},
    {"category": "aggregate",
     "question": "What is the average unit price of the {brand} products?",
     "query": "SELECT AVG(unit_price) FROM product WHERE brand = '{brand}'",
     "slots": "SELECT DISTINCT brand FROM product"},
    {"category": "aggregate",
     "question": "How many orders were sent with {method} shipping?",
     "query": "SELECT COUNT(*) FROM orders WHERE ship_method = '{method}'",
     "slots": "SELECT DISTINCT ship_method AS method FROM orders"},
    {"category": "group_by",
     "question": "How many products are there in each category?",
     "query": "SELECT category, COUNT(*) FROM product GROUP BY category"},
    {"category": "group_by",
     "question": "What is the total quantity ordered for each product category?",
     "query": "SELECT T2.category, SUM(T1.quantity) FROM order_item AS T1 JOIN product AS T2 "
              "ON T1.product_id = T2.product_id GROUP BY T2.category"},
    {"category": "order_limit",
     "question": "What is the name of the most expensive product?",
     "query": "SELECT prod_name FROM product ORDER BY unit_price DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names and prices of the {n} cheapest products.",
     "query": "SELECT prod_name, unit_price FROM product ORDER BY unit_price LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "like",
     "question": "Which products have '{word}' in their name?",
     "query": "SELECT prod_name FROM product WHERE prod_name LIKE '%{word}%'",
     "slots": [{"word": "Wireless"}, {"word": "Garden"}, {"word": "Desk"}]},
]

ENTITIES = {
    "customer": {
        "one": "customer", "many": "customers",
        "label": ("username", "username", "usernames"),
        "text": {"country": ("country", "countries"), "account_type": ("account type", "account types")},
        "number": {"signup_yr": "signup year"},
    },
    "product": {
        "one": "product", "many": "products",
        "label": ("prod_name", "name", "names"),
        "text": {"category": ("category", "categories"), "brand": ("brand", "brands")},
        "number": {"unit_price": "unit price", "stock_qty": "number of units in stock"},
    },
    "orders": {
        "one": "order", "many": "orders",
        "label": None,
        "text": {"status": ("status", "statuses"), "ship_method": ("shipping method", "shipping methods")},
        "number": {"shipping_fee": "shipping fee"},
    },
    "order_item": {
        "one": "order item", "many": "order items",
        "label": None,
        "text": {},
        "number": {"quantity": "quantity"},
    },
}
