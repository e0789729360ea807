"""Clinic: doctors, patients, appointments, medications and prescriptions (train)."""

from __future__ import annotations

import random

from .pools import CITIES, date_between, distinct_numbers, person_names

DB_ID = "clinic"

SCHEMA = """
CREATE TABLE doctor (
    doctor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    specialty TEXT NOT NULL,
    years_experience INTEGER NOT NULL,
    room TEXT NOT NULL
);
CREATE TABLE patient (
    patient_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    birth_year INTEGER NOT NULL,
    sex TEXT NOT NULL,
    city TEXT NOT NULL,
    insurance TEXT NOT NULL
);
CREATE TABLE appointment (
    appointment_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL,
    doctor_id INTEGER NOT NULL,
    appointment_date DATE NOT NULL,
    reason TEXT NOT NULL,
    fee REAL NOT NULL,
    status TEXT NOT NULL,
    FOREIGN KEY (patient_id) REFERENCES patient (patient_id),
    FOREIGN KEY (doctor_id) REFERENCES doctor (doctor_id)
);
CREATE TABLE medication (
    medication_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    unit_price REAL NOT NULL
);
CREATE TABLE prescription (
    prescription_id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL,
    medication_id INTEGER NOT NULL,
    dosage_mg INTEGER NOT NULL,
    days INTEGER NOT NULL,
    FOREIGN KEY (appointment_id) REFERENCES appointment (appointment_id),
    FOREIGN KEY (medication_id) REFERENCES medication (medication_id)
);
"""

# specialty: (base fee, reasons for a visit, medication categories it prescribes)
SPECIALTIES = {
    "Cardiology": (180, ["chest pain", "hypertension check", "palpitations"], ["Antihypertensive", "Statin"]),
    "Dermatology": (120, ["skin rash", "acne", "mole check"], ["Antibiotic", "Corticosteroid", "Antihistamine"]),
    "Pediatrics": (90, ["vaccination", "fever", "ear infection"], ["Antibiotic", "Analgesic"]),
    "Neurology": (200, ["migraine", "dizziness", "numbness"], ["Analgesic", "Anticonvulsant"]),
    "Orthopedics": (160, ["knee pain", "back pain", "sprained ankle"], ["Analgesic", "Corticosteroid"]),
    "General Practice": (70, ["annual checkup", "flu symptoms", "sore throat"], ["Antibiotic", "Analgesic",
                                                                              "Antihistamine"]),
    "Psychiatry": (150, ["anxiety", "insomnia", "depression follow-up"], ["Antidepressant"]),
}
MEDICATIONS = [  # name, category, strengths in mg
    ("Amoxicillin", "Antibiotic", [250, 500]), ("Azithromycin", "Antibiotic", [250, 500]),
    ("Doxycycline", "Antibiotic", [100]), ("Ibuprofen", "Analgesic", [200, 400, 600]),
    ("Paracetamol", "Analgesic", [500, 1000]), ("Naproxen", "Analgesic", [250, 500]),
    ("Lisinopril", "Antihypertensive", [10, 20]), ("Amlodipine", "Antihypertensive", [5, 10]),
    ("Losartan", "Antihypertensive", [50, 100]), ("Atorvastatin", "Statin", [20, 40]),
    ("Simvastatin", "Statin", [20, 40]), ("Cetirizine", "Antihistamine", [10]),
    ("Loratadine", "Antihistamine", [10]), ("Prednisone", "Corticosteroid", [5, 20]),
    ("Hydrocortisone", "Corticosteroid", [10, 20]), ("Sertraline", "Antidepressant", [50, 100]),
    ("Fluoxetine", "Antidepressant", [20, 40]), ("Gabapentin", "Anticonvulsant", [300, 600]),
    ("Levetiracetam", "Anticonvulsant", [500]), ("Metformin", "Antidiabetic", [500, 1000]),
]
INSURERS = ["BlueCross", "Medicare", "Aetna", "Cigna", "uninsured"]
STATUSES, STATUS_WEIGHTS = ["completed", "cancelled", "no-show"], [80, 12, 8]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    names = person_names(rng, 16 + 150)
    specialties = list(SPECIALTIES) * 3  # 2-3 doctors per specialty
    experience = distinct_numbers(rng, 2, 40, 16)
    doctor = [(did, names.pop(), specialties[did - 1], experience[did - 1], f"{rng.randint(1, 3)}{did:02d}")
              for did in range(1, 17)]

    patient = [(pid, names.pop(), rng.randint(1940, 2020), rng.choice(["F", "M"]), rng.choice(CITIES),
                rng.choice(INSURERS)) for pid in range(1, 151)]

    unit_prices = distinct_numbers(rng, 5, 300, len(MEDICATIONS), scale=100)
    medication = [(mid, name, category, unit_prices[mid - 1])
                  for mid, (name, category, _) in enumerate(MEDICATIONS, start=1)]

    seen_patients = rng.sample(range(1, 151), 135)  # the other 15 have no appointment yet
    children = [pid for pid in seen_patients if patient[pid - 1][2] >= 2006]
    workload = distinct_numbers(rng, 5, 40, 16)  # busier and quieter doctors
    appointment = []
    for _ in range(320):
        did = rng.choices(range(1, 17), workload)[0]
        specialty = doctor[did - 1][2]
        base_fee, reasons, _ = SPECIALTIES[specialty]
        pid = rng.choice(children if specialty == "Pediatrics" else seen_patients)
        appointment.append((0, pid, did, date_between(rng, "2023-01-01", "2024-06-30"),
                            rng.choice(reasons), float(base_fee + 10 * rng.randint(0, 6)),
                            rng.choices(STATUSES, STATUS_WEIGHTS)[0]))
    appointment.sort(key=lambda a: (a[3], a[2]))
    appointment = [(aid, *a[1:]) for aid, a in enumerate(appointment, start=1)]

    prescription = []
    for aid, _, did, _, _, _, status in appointment:
        categories = SPECIALTIES[doctor[did - 1][2]][2]
        if status != "completed" or rng.random() < 0.35:
            continue
        options = [m for m in MEDICATIONS if m[1] in categories]
        for name, _, strengths in rng.sample(options, rng.choice([1, 1, 2])):
            mid = next(i for i, m in enumerate(MEDICATIONS, start=1) if m[0] == name)
            days = rng.choice([5, 7, 10, 14, 30])
            prescription.append((len(prescription) + 1, aid, mid, rng.choice(strengths), days))
    return {"doctor": doctor, "patient": patient, "medication": medication, "appointment": appointment,
            "prescription": prescription}


SPECIALTY = "SELECT DISTINCT specialty FROM doctor"
DOCTOR = "SELECT name AS doctor FROM doctor"
PATIENT = "SELECT name AS patient FROM patient"

TEMPLATES = [
    {"category": "where",
     "question": "Which doctors have more than {years} years of experience?",
     "query": "SELECT name FROM doctor WHERE years_experience > {years}",
     "slots": [{"years": 10}, {"years": 20}, {"years": 30}]},
    {"category": "where",
     "question": "List the names of patients from {city} born before {year}.",
     "query": "SELECT name FROM patient WHERE city = '{city}' AND birth_year < {year}",
     "slots": "SELECT DISTINCT city, 1970 AS year FROM patient"},
    {"category": "where",
     "question": "What are the names of the {specialty} doctors?",
     "query": "SELECT name FROM doctor WHERE specialty = '{specialty}'",
     "slots": SPECIALTY},
    {"category": "join",
     "question": "On which dates did {patient} have appointments?",
     "query": "SELECT T1.appointment_date FROM appointment AS T1 JOIN patient AS T2 ON T1.patient_id = T2.patient_id "
              "WHERE T2.name = '{patient}'",
     "slots": PATIENT},
    {"category": "join",
     "question": "What were the reasons for the appointments with {doctor}?",
     "query": "SELECT T1.reason FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id "
              "WHERE T2.name = '{doctor}'",
     "slots": DOCTOR},
    {"category": "join",
     "question": "Which medications were prescribed for more than {days} days? Give the names.",
     "query": "SELECT DISTINCT T2.name FROM prescription AS T1 JOIN medication AS T2 "
              "ON T1.medication_id = T2.medication_id WHERE T1.days > {days}",
     "slots": [{"days": 7}, {"days": 14}]},
    {"category": "multi_join",
     "question": "Which doctors has {patient} seen? List their names and specialties.",
     "query": "SELECT DISTINCT T3.name, T3.specialty FROM patient AS T1 JOIN appointment AS T2 "
              "ON T1.patient_id = T2.patient_id JOIN doctor AS T3 ON T2.doctor_id = T3.doctor_id "
              "WHERE T1.name = '{patient}'",
     "slots": PATIENT},
    {"category": "multi_join",
     "question": "What medications were prescribed to {patient}?",
     "query": "SELECT T4.name FROM patient AS T1 JOIN appointment AS T2 ON T1.patient_id = T2.patient_id "
              "JOIN prescription AS T3 ON T2.appointment_id = T3.appointment_id "
              "JOIN medication AS T4 ON T3.medication_id = T4.medication_id WHERE T1.name = '{patient}'",
     "slots": PATIENT},
    {"category": "multi_join",
     "question": "Which medications have {specialty} doctors prescribed?",
     "query": "SELECT DISTINCT T4.name FROM doctor AS T1 JOIN appointment AS T2 ON T1.doctor_id = T2.doctor_id "
              "JOIN prescription AS T3 ON T2.appointment_id = T3.appointment_id "
              "JOIN medication AS T4 ON T3.medication_id = T4.medication_id WHERE T1.specialty = '{specialty}'",
     "slots": SPECIALTY},
    {"category": "aggregate",
     "question": "How many appointments did {doctor} have?",
     "query": "SELECT COUNT(*) FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id "
              "WHERE T2.name = '{doctor}'",
     "slots": DOCTOR},
    {"category": "aggregate",
     "question": "What is the average fee of appointments for {reason}?",
     "query": "SELECT AVG(fee) FROM appointment WHERE reason = '{reason}'",
     "slots": "SELECT DISTINCT reason FROM appointment"},
    {"category": "aggregate",
     "question": "What is the total of the fees of the completed appointments in {year}?",
     "query": "SELECT SUM(fee) FROM appointment WHERE status = 'completed' AND appointment_date LIKE '{year}%'",
     "slots": [{"year": 2023}, {"year": 2024}]},
    {"category": "aggregate",
     "question": "What are the minimum and maximum unit prices of the {category} medications?",
     "query": "SELECT MIN(unit_price), MAX(unit_price) FROM medication WHERE category = '{category}'",
     "slots": "SELECT DISTINCT category FROM medication"},
    {"category": "group_by",
     "question": "How many doctors are there in each specialty?",
     "query": "SELECT specialty, COUNT(*) FROM doctor GROUP BY specialty"},
    {"category": "group_by",
     "question": "Which patients have had more than {n} appointments?",
     "query": "SELECT T2.name FROM appointment AS T1 JOIN patient AS T2 ON T1.patient_id = T2.patient_id "
              "GROUP BY T1.patient_id HAVING COUNT(*) > {n}",
     "slots": [{"n": 3}, {"n": 4}]},
    {"category": "group_by",
     "question": "What is the average appointment fee of each doctor? Show the doctor names and the averages.",
     "query": "SELECT T2.name, AVG(T1.fee) FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id "
              "GROUP BY T2.name"},
    {"category": "group_by",
     "question": "Which insurance plans cover more than {n} patients?",
     "query": "SELECT insurance FROM patient GROUP BY insurance HAVING COUNT(*) > {n}",
     "slots": [{"n": 25}, {"n": 30}]},
    {"category": "order_limit",
     "question": "Who is the most experienced doctor?",
     "query": "SELECT name FROM doctor ORDER BY years_experience DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names and unit prices of the {n} most expensive medications.",
     "query": "SELECT name, unit_price FROM medication ORDER BY unit_price DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "Which doctor has had the most appointments?",
     "query": "SELECT T2.name FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id "
              "GROUP BY T2.name ORDER BY COUNT(*) DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the {specialty} doctors from the most to the least experienced.",
     "query": "SELECT name FROM doctor WHERE specialty = '{specialty}' ORDER BY years_experience DESC",
     "slots": SPECIALTY},
    {"category": "nested",
     "question": "Which patients have never had an appointment?",
     "query": "SELECT name FROM patient WHERE patient_id NOT IN (SELECT patient_id FROM appointment)"},
    {"category": "nested",
     "question": "Which medications have never been prescribed?",
     "query": "SELECT name FROM medication WHERE medication_id NOT IN (SELECT medication_id FROM prescription)"},
    {"category": "nested",
     "question": "Which medications cost more per unit than the average medication?",
     "query": "SELECT name FROM medication WHERE unit_price > (SELECT AVG(unit_price) FROM medication)"},
    {"category": "nested",
     "question": "Which doctors have seen a patient from {city}?",
     "query": "SELECT name FROM doctor WHERE doctor_id IN (SELECT T1.doctor_id FROM appointment AS T1 "
              "JOIN patient AS T2 ON T1.patient_id = T2.patient_id WHERE T2.city = '{city}')",
     "slots": "SELECT DISTINCT city FROM patient"},
    {"category": "set_op",
     "question": "Which patients have seen doctors of both the {specialty} and the {other} specialties?",
     "query": "SELECT T1.name FROM patient AS T1 JOIN appointment AS T2 ON T1.patient_id = T2.patient_id "
              "JOIN doctor AS T3 ON T2.doctor_id = T3.doctor_id WHERE T3.specialty = '{specialty}' INTERSECT "
              "SELECT T1.name FROM patient AS T1 JOIN appointment AS T2 ON T1.patient_id = T2.patient_id "
              "JOIN doctor AS T3 ON T2.doctor_id = T3.doctor_id WHERE T3.specialty = '{other}'",
     "slots": "SELECT DISTINCT T1.specialty, T2.specialty AS other FROM doctor AS T1 JOIN doctor AS T2 "
              "ON T1.specialty < T2.specialty"},
    {"category": "set_op",
     "question": "Which patients from {city} have never missed an appointment (no no-show)?",
     "query": "SELECT name FROM patient WHERE city = '{city}' EXCEPT SELECT T2.name FROM appointment AS T1 "
              "JOIN patient AS T2 ON T1.patient_id = T2.patient_id WHERE T1.status = 'no-show'",
     "slots": "SELECT DISTINCT city FROM patient"},
    {"category": "set_op",
     "question": "What are the names of medications in the {category} or {other} categories?",
     "query": "SELECT name FROM medication WHERE category = '{category}' UNION "
              "SELECT name FROM medication WHERE category = '{other}'",
     "slots": "SELECT DISTINCT T1.category, T2.category AS other FROM medication AS T1 JOIN medication AS T2 "
              "ON T1.category < T2.category"},
    {"category": "distinct",
     "question": "What are the different reasons patients visited a {specialty} doctor?",
     "query": "SELECT DISTINCT T1.reason FROM appointment AS T1 JOIN doctor AS T2 ON T1.doctor_id = T2.doctor_id "
              "WHERE T2.specialty = '{specialty}'",
     "slots": SPECIALTY},
    {"category": "distinct",
     "question": "How many different patients has {doctor} seen?",
     "query": "SELECT COUNT(DISTINCT T1.patient_id) FROM appointment AS T1 JOIN doctor AS T2 "
              "ON T1.doctor_id = T2.doctor_id WHERE T2.name = '{doctor}'",
     "slots": DOCTOR},
    {"category": "like",
     "question": "How many appointments were there in {month} 2023?",
     "query": "SELECT COUNT(*) FROM appointment WHERE appointment_date LIKE '2023-{mm}%'",
     "slots": [{"month": "February", "mm": "02"}, {"month": "June", "mm": "06"}, {"month": "October", "mm": "10"}]},
    {"category": "like",
     "question": "Which appointments were for some kind of pain? Give the dates and reasons.",
     "query": "SELECT appointment_date, reason FROM appointment WHERE reason LIKE '%pain%'"},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "doctor": {"one": "doctor", "many": "doctors", "label": ("name", "name", "names"),
               "text": {"specialty": ("specialty", "specialties")}, "number": {"years_experience": "years of experience"}},
    "patient": {"one": "patient", "many": "patients", "label": ("name", "name", "names"),
                "text": {"city": ("city", "cities"), "insurance": ("insurance", "insurances")}, "number": {"birth_year": "birth year"}},
    "appointment": {"one": "appointment", "many": "appointments", "label": None,
                    "text": {"status": ("status", "statuses"), "reason": "reason"}, "number": {"fee": "fee"}},
    "medication": {"one": "medication", "many": "medications", "label": ("name", "name", "names"),
                   "text": {"category": ("category", "categories")}, "number": {"unit_price": "unit price"}},
    "prescription": {"one": "prescription", "many": "prescriptions", "label": None,
                     "number": {"dosage_mg": "dosage in milligrams", "days": "number of days"}},
}
