"""University: departments, instructors, courses, students and their enrollments (train)."""

from __future__ import annotations

import random

from .pools import CITIES, distinct_numbers, person_names

DB_ID = "university"

SCHEMA = """
CREATE TABLE department (
    dept_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    building TEXT NOT NULL,
    budget REAL NOT NULL
);
CREATE TABLE instructor (
    instructor_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    salary INTEGER NOT NULL,
    hire_year INTEGER NOT NULL,
    dept_id INTEGER NOT NULL,
    FOREIGN KEY (dept_id) REFERENCES department (dept_id)
);
CREATE TABLE course (
    course_id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    title TEXT NOT NULL,
    credits INTEGER NOT NULL,
    dept_id INTEGER NOT NULL,
    instructor_id INTEGER NOT NULL,
    FOREIGN KEY (dept_id) REFERENCES department (dept_id),
    FOREIGN KEY (instructor_id) REFERENCES instructor (instructor_id)
);
CREATE TABLE student (
    student_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    hometown TEXT NOT NULL,
    enrollment_year INTEGER NOT NULL,
    gpa REAL NOT NULL,
    major_dept_id INTEGER NOT NULL,
    FOREIGN KEY (major_dept_id) REFERENCES department (dept_id)
);
CREATE TABLE enrollment (
    enrollment_id INTEGER PRIMARY KEY,
    student_id INTEGER NOT NULL,
    course_id INTEGER NOT NULL,
    semester TEXT NOT NULL,
    grade TEXT NOT NULL,
    FOREIGN KEY (student_id) REFERENCES student (student_id),
    FOREIGN KEY (course_id) REFERENCES course (course_id)
);
"""

# name, building, course code prefix, course titles
DEPARTMENTS = [
    ("Computer Science", "Turing Hall", "CS", ["Introduction to Programming", "Data Structures", "Algorithms",
                                              "Operating Systems", "Database Systems", "Machine Learning"]),
    ("Mathematics", "Noether Hall", "MATH", ["Calculus", "Linear Algebra", "Probability Theory", "Real Analysis",
                                             "Number Theory"]),
    ("Physics", "Curie Building", "PHYS", ["Classical Mechanics", "Electromagnetism", "Quantum Mechanics",
                                           "Thermodynamics", "Introduction to Astrophysics"]),
    ("Chemistry", "Curie Building", "CHEM", ["General Chemistry", "Organic Chemistry", "Physical Chemistry",
                                             "Analytical Chemistry"]),
    ("Biology", "Darwin Hall", "BIO", ["Cell Biology", "Genetics", "Ecology", "Microbiology", "Evolutionary Theory"]),
    ("History", "Gibbon Hall", "HIST", ["Ancient Civilizations", "Medieval Europe", "Modern World History",
                                        "History of Science"]),
    ("Economics", "Smith Building", "ECON", ["Introduction to Microeconomics", "Macroeconomics", "Econometrics",
                                             "Game Theory", "Development Economics"]),
    ("Philosophy", "Gibbon Hall", "PHIL", ["Introduction to Logic", "Ethics", "Philosophy of Mind",
                                           "Political Theory"]),
]
TITLES = ["Professor", "Associate Professor", "Assistant Professor", "Lecturer"]
SEMESTERS = ["Fall 2022", "Spring 2023", "Fall 2023", "Spring 2024"]
GRADES, GRADE_WEIGHTS = ["A", "B", "C", "D", "F"], [30, 35, 20, 10, 5]


def rows(rng: random.Random) -> dict[str, list[tuple]]:
    budgets = distinct_numbers(rng, 400, 2500, len(DEPARTMENTS))
    department = [(i, name, building, budgets[i - 1] * 1000.0)
                  for i, (name, building, _, _) in enumerate(DEPARTMENTS, start=1)]

    # 2-5 instructors per department; salaries distinct so "highest paid" has one answer
    staff = {dept_id: rng.randint(2, 5) for dept_id in range(1, len(DEPARTMENTS) + 1)}
    names = person_names(rng, sum(staff.values()) + 120)
    salaries = distinct_numbers(rng, 110, 320, sum(staff.values()))
    instructor, by_dept = [], {}
    for dept_id, count in staff.items():
        for _ in range(count):
            iid = len(instructor) + 1
            instructor.append((iid, names.pop(), rng.choice(TITLES), salaries[iid - 1] * 500,
                               rng.randint(1995, 2023), dept_id))
            by_dept.setdefault(dept_id, []).append(iid)

    course = []
    for dept_id, (_, _, prefix, titles) in enumerate(DEPARTMENTS, start=1):
        for k, title in enumerate(titles, start=1):
            course.append((len(course) + 1, f"{prefix}{100 * (1 + (k - 1) // 2) + k}", title,
                           rng.choice([3, 3, 4, 4, 5]), dept_id, rng.choice(by_dept[dept_id])))

    gpas = distinct_numbers(rng, 200, 400, 120, scale=100)
    student = [(sid, names.pop(), rng.choice(CITIES), rng.randint(2019, 2023), gpas[sid - 1],
                rng.randint(1, len(DEPARTMENTS))) for sid in range(1, 121)]

    # a few new courses nobody has taken yet ("which courses have no students?")
    unoffered = set(rng.sample(range(1, len(course) + 1), 3))
    offered = [c for c in course if c[0] not in unoffered]
    enrollment = []
    for sid, *_, major in student:
        in_major = [c for c in offered if c[4] == major]
        taken = rng.sample(in_major, min(len(in_major), rng.randint(1, 3)))
        taken += rng.sample([c for c in offered if c[4] != major], rng.randint(1, 3))
        for c in taken:
            enrollment.append((len(enrollment) + 1, sid, c[0], rng.choice(SEMESTERS),
                               rng.choices(GRADES, GRADE_WEIGHTS)[0]))
    return {"department": department, "instructor": instructor, "course": course,
            "student": student, "enrollment": enrollment}


DEPT = "SELECT name AS dept FROM department"
STUDENT = "SELECT name AS student FROM student"
COURSE = "SELECT title AS course FROM course"

TEMPLATES = [
    {"category": "where",
     "question": "What are the names of instructors hired after {year}?",
     "query": "SELECT name FROM instructor WHERE hire_year > {year}",
     "slots": [{"year": 2012}, {"year": 2016}, {"year": 2020}]},
    {"category": "where",
     "question": "Which courses are worth {credits} credits? Give their titles.",
     "query": "SELECT title FROM course WHERE credits = {credits}",
     "slots": "SELECT DISTINCT credits FROM course"},
    {"category": "where",
     "question": "Find the names and GPAs of students from {city} who enrolled in {year}.",
     "query": "SELECT name, gpa FROM student WHERE hometown = '{city}' AND enrollment_year = {year}",
     "slots": "SELECT DISTINCT hometown AS city, enrollment_year AS year FROM student"},
    {"category": "join",
     "question": "What are the titles of the courses offered by the {dept} department?",
     "query": "SELECT T1.title FROM course AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
              "WHERE T2.name = '{dept}'",
     "slots": DEPT},
    {"category": "join",
     "question": "Who teaches {course}?",
     "query": "SELECT T2.name FROM course AS T1 JOIN instructor AS T2 ON T1.instructor_id = T2.instructor_id "
              "WHERE T1.title = '{course}'",
     "slots": COURSE},
    {"category": "multi_join",
     "question": "What are the names of the students who took {course} in {semester}?",
     "query": "SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "JOIN course AS T3 ON T2.course_id = T3.course_id "
              "WHERE T3.title = '{course}' AND T2.semester = '{semester}'",
     "slots": "SELECT DISTINCT T2.title AS course, T1.semester FROM enrollment AS T1 "
              "JOIN course AS T2 ON T1.course_id = T2.course_id"},
    {"category": "multi_join",
     "question": "List the titles of the courses taken by {student} and the grade received in each.",
     "query": "SELECT T3.title, T2.grade FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "JOIN course AS T3 ON T2.course_id = T3.course_id WHERE T1.name = '{student}'",
     "slots": STUDENT},
    {"category": "aggregate",
     "question": "How many students major in {dept}?",
     "query": "SELECT COUNT(*) FROM student AS T1 JOIN department AS T2 ON T1.major_dept_id = T2.dept_id "
              "WHERE T2.name = '{dept}'",
     "slots": DEPT},
    {"category": "aggregate",
     "question": "What is the average salary of instructors in the {dept} department?",
     "query": "SELECT AVG(T1.salary) FROM instructor AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
              "WHERE T2.name = '{dept}'",
     "slots": DEPT},
    {"category": "aggregate",
     "question": "What are the lowest and highest GPAs of students who enrolled in {year}?",
     "query": "SELECT MIN(gpa), MAX(gpa) FROM student WHERE enrollment_year = {year}",
     "slots": "SELECT DISTINCT enrollment_year AS year FROM student"},
    {"category": "aggregate",
     "question": "What is the total budget of the departments located in {building}?",
     "query": "SELECT SUM(budget) FROM department WHERE building = '{building}'",
     "slots": "SELECT DISTINCT building FROM department"},
    {"category": "group_by",
     "question": "How many instructors does each department have? Show the department name and the count.",
     "query": "SELECT T2.name, COUNT(*) FROM instructor AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
              "GROUP BY T2.name"},
    {"category": "group_by",
     "question": "Which departments offer more than {n} courses?",
     "query": "SELECT T2.name FROM course AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
              "GROUP BY T2.name HAVING COUNT(*) > {n}",
     "slots": [{"n": 3}, {"n": 4}, {"n": 5}]},
    {"category": "group_by",
     "question": "Find the names of students enrolled in at least {n} courses.",
     "query": "SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "GROUP BY T1.student_id HAVING COUNT(*) >= {n}",
     "slots": [{"n": 5}, {"n": 6}]},
    {"category": "group_by",
     "question": "What is the average GPA of the students of each enrollment year?",
     "query": "SELECT enrollment_year, AVG(gpa) FROM student GROUP BY enrollment_year"},
    {"category": "order_limit",
     "question": "What is the name of the student with the highest GPA?",
     "query": "SELECT name FROM student ORDER BY gpa DESC LIMIT 1"},
    {"category": "order_limit",
     "question": "List the names and salaries of the {n} best paid instructors.",
     "query": "SELECT name, salary FROM instructor ORDER BY salary DESC LIMIT {n}",
     "slots": [{"n": 3}, {"n": 5}]},
    {"category": "order_limit",
     "question": "List the names of all departments from the largest budget to the smallest.",
     "query": "SELECT name FROM department ORDER BY budget DESC"},
    {"category": "order_limit",
     "question": "Which department has the most students majoring in it?",
     "query": "SELECT T2.name FROM student AS T1 JOIN department AS T2 ON T1.major_dept_id = T2.dept_id "
              "GROUP BY T2.name ORDER BY COUNT(*) DESC LIMIT 1"},
    {"category": "nested",
     "question": "Which instructors earn more than the average salary of all instructors?",
     "query": "SELECT name FROM instructor WHERE salary > (SELECT AVG(salary) FROM instructor)"},
    {"category": "nested",
     "question": "What are the titles of the courses no student has enrolled in?",
     "query": "SELECT title FROM course WHERE course_id NOT IN (SELECT course_id FROM enrollment)"},
    {"category": "nested",
     "question": "Which departments have an instructor hired before {year}?",
     "query": "SELECT name FROM department WHERE dept_id IN (SELECT dept_id FROM instructor WHERE hire_year < {year})",
     "slots": [{"year": 2000}, {"year": 2005}, {"year": 2010}]},
    {"category": "nested",
     "question": "Which students have a higher GPA than every student majoring in {dept}?",
     "query": "SELECT name FROM student WHERE gpa > (SELECT MAX(T1.gpa) FROM student AS T1 JOIN department AS T2 "
              "ON T1.major_dept_id = T2.dept_id WHERE T2.name = '{dept}')",
     "slots": DEPT},
    {"category": "set_op",
     "question": "Which students have taken both {course} and {other}?",
     "query": "SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "JOIN course AS T3 ON T2.course_id = T3.course_id WHERE T3.title = '{course}' INTERSECT "
              "SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "JOIN course AS T3 ON T2.course_id = T3.course_id WHERE T3.title = '{other}'",
     "slots": "SELECT T1.title AS course, T2.title AS other FROM course AS T1 JOIN course AS T2 "
              "ON T1.dept_id = T2.dept_id AND T1.course_id < T2.course_id"},
    {"category": "set_op",
     "question": "Find the names of instructors who work in the {dept} department or were hired after 2020.",
     "query": "SELECT T1.name FROM instructor AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id "
              "WHERE T2.name = '{dept}' UNION SELECT name FROM instructor WHERE hire_year > 2020",
     "slots": DEPT},
    {"category": "set_op",
     "question": "Which students majoring in {dept} have never received an F?",
     "query": "SELECT T1.name FROM student AS T1 JOIN department AS T2 ON T1.major_dept_id = T2.dept_id "
              "WHERE T2.name = '{dept}' EXCEPT SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 "
              "ON T1.student_id = T2.student_id WHERE T2.grade = 'F'",
     "slots": DEPT},
    {"category": "distinct",
     "question": "What are the different buildings that house departments?",
     "query": "SELECT DISTINCT building FROM department"},
    {"category": "distinct",
     "question": "In which semesters did {student} take courses?",
     "query": "SELECT DISTINCT T2.semester FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id "
              "WHERE T1.name = '{student}'",
     "slots": STUDENT},
    {"category": "distinct",
     "question": "How many different hometowns do the students come from?",
     "query": "SELECT COUNT(DISTINCT hometown) FROM student"},
    {"category": "like",
     "question": "Which courses have the word '{word}' in their title?",
     "query": "SELECT title FROM course WHERE title LIKE '%{word}%'",
     "slots": [{"word": "Introduction"}, {"word": "Theory"}, {"word": "Chemistry"}, {"word": "History"}]},
    {"category": "like",
     "question": "Find the names of students whose name starts with '{letter}'.",
     "query": "SELECT name FROM student WHERE name LIKE '{letter}%'",
     "slots": [{"letter": letter} for letter in "ADMS"]},
]

# For the generic templates (demo/generic.py): how questions name rows and columns.
ENTITIES = {
    "department": {"one": "department", "many": "departments", "label": ("name", "name", "names"),
                   "text": {"building": "building"}, "number": {"budget": "budget"}},
    "instructor": {"one": "instructor", "many": "instructors", "label": ("name", "name", "names"),
                   "text": {"title": "title"}, "number": {"salary": "salary", "hire_year": "hiring year"}},
    "course": {"one": "course", "many": "courses", "label": ("title", "title", "titles"),
               "number": {"credits": "number of credits"}},
    "student": {"one": "student", "many": "students", "label": ("name", "name", "names"),
                "text": {"hometown": "hometown"}, "number": {"gpa": "grade point average", "enrollment_year": "year of enrollment"},
                "links": {"major_dept_id": "major department"}},
    "enrollment": {"one": "enrollment", "many": "enrollments", "label": None, "text": {"semester": "semester", "grade": "grade"}},
}
