"""Parts-list files: real SQLite databases shaped like LogiKal's (docs/logikal-api.md §9).

LogiKal answers `GET /elevations/selected/parts-list` with a base64 SQLite
file of 0.7–1.7 MB and ~71 tables. The sandbox builds a smaller schema (the
17 tables the old middleware's guide names) with the columns its parser
required, and pads the bulk tables (Articles, Profiles, CalcDetailItems) until
the file reaches the configured size. Content is a pure function of
(elevation id, versionId, size target), so a file only changes when the
elevation does; built files are kept in a small LRU because one ~1 MB file
costs tens of milliseconds to build.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, get_args

from .tree import Elevation, Project

SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE Projects (ProjectID INTEGER PRIMARY KEY, Name TEXT, JobNumber TEXT, OfferNumber TEXT,
    PersonInCharge TEXT);
CREATE TABLE Phases (PhaseID INTEGER PRIMARY KEY, ProjectID INTEGER, Name TEXT, Description TEXT);
CREATE TABLE Elevations (ElevationID INTEGER PRIMARY KEY, PhaseID INTEGER, Name TEXT, Amount REAL,
    AutoDescription TEXT, AutoDescriptionShort TEXT, Description TEXT,
    Width_Output REAL, Width_Unit TEXT, Height_Output REAL, Height_Unit TEXT,
    Weight_Output REAL, Weight_Unit TEXT, Area_Output REAL, Area_Unit TEXT,
    SystemCode TEXT, SystemName TEXT, SystemLongName TEXT, ColorBase_Long TEXT, ColorBase TEXT);
CREATE TABLE Glass (GlassID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT, Description TEXT,
    Position TEXT, Width REAL, Height REAL, Area REAL, Weight REAL, Thickness REAL, UValue REAL,
    Amount REAL);
CREATE TABLE Insertions (InsertionID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT, Type TEXT,
    Width REAL, Height REAL, OpeningType TEXT, Amount REAL);
CREATE TABLE Suppliers (SupplierID INTEGER PRIMARY KEY, Name TEXT, City TEXT, Country TEXT);
CREATE TABLE Manufacturers (ManufacturerID INTEGER PRIMARY KEY, Name TEXT, ShortName TEXT);
CREATE TABLE Colors (ColorID INTEGER PRIMARY KEY, Code TEXT, Name TEXT, Surface TEXT, PricePerKg REAL);
CREATE TABLE Articles (ArticleID INTEGER PRIMARY KEY, ElevationID INTEGER, ArticleCode TEXT,
    Description TEXT, Amount REAL, Unit TEXT, Color TEXT, SupplierID INTEGER, ManufacturerID INTEGER,
    PackagingUnit REAL, Price REAL, Weight REAL);
CREATE TABLE Profiles (ProfileID INTEGER PRIMARY KEY, ElevationID INTEGER, ArticleCode TEXT,
    Description TEXT, Length REAL, Length_Unit TEXT, Amount REAL, Color TEXT, Angle1 REAL, Angle2 REAL,
    Position TEXT, Price REAL, Weight REAL);
CREATE TABLE LabourTimes (LabourTimeID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT,
    Minutes REAL, Category TEXT);
CREATE TABLE LabourCosts (LabourCostID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT,
    HourlyRate REAL, Hours REAL, Total REAL);
CREATE TABLE CalcItemNames (CalcItemNameID INTEGER PRIMARY KEY, Name TEXT);
CREATE TABLE CalcDetailItems (CalcDetailItemID INTEGER PRIMARY KEY, CalcItemNameID INTEGER,
    ElevationID INTEGER, Value REAL, Quantity REAL, Remark TEXT);
CREATE TABLE MountingLines (MountingLineID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT,
    Length REAL, Side TEXT);
CREATE TABLE UValue (UValueID INTEGER PRIMARY KEY, ElevationID INTEGER, Name TEXT, U REAL, U_Unit TEXT,
    Area REAL, Area_Unit TEXT);
CREATE TABLE ElevationCE (ElevationCEID INTEGER PRIMARY KEY, ElevationID INTEGER, Standard TEXT,
    AirPermeability TEXT, WaterTightness TEXT, WindResistance TEXT, Uw REAL);
"""

TABLES = (
    "Projects",
    "Phases",
    "Elevations",
    "Glass",
    "Insertions",
    "Suppliers",
    "Manufacturers",
    "Colors",
    "Articles",
    "Profiles",
    "LabourTimes",
    "LabourCosts",
    "CalcItemNames",
    "CalcDetailItems",
    "MountingLines",
    "UValue",
    "ElevationCE",
)

_ARTICLE_WORDS = [
    "Hinge 3D adjustable",
    "Corner cleat 35 mm",
    "EPDM gasket outer",
    "EPDM gasket centre",
    "Screw ST 4.2x19 A2",
    "Drainage cap",
    "Handle Secustik",
    "Espagnolette 1200",
    "Striker plate",
    "Glazing bead clip",
    "Expansion joint tape",
    "Thermal break insert",
    "Sealant MS polymer 290 ml",
    "Setting block 100x24x5",
    "Lock cylinder 30/30",
    "Stay arm 400",
    "Roller carriage 200 kg",
]
_PROFILE_WORDS = [
    "Frame profile",
    "Vent profile",
    "Mullion",
    "Transom",
    "Glazing bead",
    "Threshold",
    "Coupling profile",
    "Cover cap",
    "Reinforcement",
    "Sill profile",
]
_CALC_NAMES = [
    "Profiles net",
    "Accessories net",
    "Glass net",
    "Gaskets net",
    "Surface treatment",
    "Labour workshop",
    "Labour site",
    "Transport",
    "Waste",
    "Overhead",
    "Margin",
    "Discount",
    "Total net",
    "VAT",
    "Total gross",
]
_SUPPLIERS = [
    ("Reynaers Aluminium", "Duffel", "BE"),
    ("Schüco International", "Bielefeld", "DE"),
    ("AGC Glass", "Louvain-la-Neuve", "BE"),
    ("Roto Frank", "Leinfelden", "DE"),
    ("Aluprof", "Bielsko-Biała", "PL"),
]


@dataclass(frozen=True)
class PartsListSource:
    """Everything a parts-list file is derived from: a copy of the elevation as it stands (a file
    built in a worker thread must not see later changes), and its project's and phase's names."""

    elevation: Elevation
    project_name: str
    job_number: str
    offer_number: str
    person_in_charge: str
    phase_name: str

    @classmethod
    def of(cls, elevation: Elevation, project: Project, phase_name: str) -> PartsListSource:
        return cls(
            replace(elevation),
            project.name,
            project.job_number,
            project.offer_number,
            project.person_in_charge,
            phase_name,
        )

    def seed(self) -> int:
        digest = hashlib.sha256(f"{self.elevation.id}:{self.elevation.version_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big")


def build_parts_list(source: PartsListSource, target_bytes: int) -> bytes:
    """Build the SQLite file for one elevation version, about `target_bytes` long.

    Files never go below the empty schema (~70 KB: one page per table).
    """
    rng = random.Random(source.seed())
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(_SCHEMA)
        _fill_fixed_tables(con, rng, source)
        _fill_bulk_tables(con, rng, source, target_bytes)
        con.commit()
        return con.serialize()
    finally:
        con.close()


# How a file broken at the source is broken; each kind gives the same bytes on every answer:
# - `not_sqlite`: an error text where the file should be;
# - `truncated`: the file cut at two thirds (131,072 of 196,608 bytes, say), its header intact;
# - `damaged`: the file at its full, announced size with its second half overwritten.
BrokenKind = Literal["not_sqlite", "truncated", "damaged"]
BROKEN_KINDS: tuple[str, ...] = get_args(BrokenKind)


def corrupt_parts_list(source: PartsListSource, size: int = 48_000) -> bytes:
    """Bytes that decode from base64 fine but are not a SQLite database."""
    rng = random.Random(source.seed() ^ 0x5EED)
    prefix = b"Report generation failed: object reference not set to an instance of an object.\r\n"
    return prefix + rng.randbytes(max(size - len(prefix), 0))


def broken_parts_list(source: PartsListSource, good: bytes, kind: str) -> bytes:
    """The file of `source` broken as `kind` says (`BrokenKind`); the same bytes on every call."""
    if kind == "not_sqlite":
        return corrupt_parts_list(source)
    if kind == "truncated":
        return good[: len(good) * 2 // 3]
    if kind == "damaged":
        rng = random.Random(source.seed() ^ 0xDA3A6E)
        half = len(good) // 2
        return good[:half] + rng.randbytes(len(good) - half)
    raise ValueError(f"unknown broken parts-list kind {kind!r}; expected one of {BROKEN_KINDS}")


def cut_short(content: bytes, rng: random.Random) -> bytes:
    """A download gone wrong: the file cut at a random byte, so two cuts rarely match."""
    return content[: rng.randrange(1, len(content))] if len(content) > 1 else b""


def _fill_fixed_tables(con: sqlite3.Connection, rng: random.Random, source: PartsListSource) -> None:
    con.execute(
        "INSERT INTO Projects VALUES (1, ?, ?, ?, ?)",
        (source.project_name, source.job_number, source.offer_number, source.person_in_charge),
    )
    con.execute("INSERT INTO Phases VALUES (1, 1, ?, '')", (source.phase_name,))

    elevation = source.elevation
    area = round(elevation.width * elevation.height / 1e6, 3)
    weight = round(area * elevation.system.kg_per_m2 * rng.uniform(0.9, 1.1), 2)
    short = elevation.automatic_description.split(",")[0]
    rows = []
    # Some LogiKal elevations are coupled elements whose file carries one row
    # per part, not always with the elevation itself first (docs/logikal-api.md §9): a
    # parser must match the row by Name.
    if rng.random() < 0.35:
        part_w = round(elevation.width / 2, 1)
        part_area = round(part_w * elevation.height / 1e6, 3)
        rows.append((f"{elevation.name}.1", part_w, part_area, round(weight / 2, 2), f"{short} (part)"))
    rows.append((elevation.name, elevation.width, area, weight, short))
    con.executemany(
        "INSERT INTO Elevations (PhaseID, Name, Amount, AutoDescription, AutoDescriptionShort, Description,"
        " Width_Output, Width_Unit, Height_Output, Height_Unit, Weight_Output, Weight_Unit, Area_Output,"
        " Area_Unit, SystemCode, SystemName, SystemLongName, ColorBase_Long, ColorBase)"
        " VALUES (1, ?, ?, ?, ?, ?, ?, 'mm', ?, 'mm', ?, 'kg', ?, 'm²', ?, ?, ?, ?, ?)",
        [
            (
                name,
                elevation.amount,
                elevation.automatic_description,
                short_text,
                elevation.user_description,
                width,
                elevation.height,
                row_weight,
                row_area,
                elevation.system.code,
                elevation.system.name,
                elevation.system.long_name,
                elevation.color[1],
                elevation.color[0],
            )
            for name, width, row_area, row_weight, short_text in rows
        ],
    )
    elevation_row = len(rows)

    panes = rng.randint(1, 8)
    glass_rows = []
    for pane in range(1, panes + 1):
        width = round(rng.uniform(300, min(elevation.width, 2400)), 1)
        height = round(rng.uniform(300, min(elevation.height, 2800)), 1)
        thickness = rng.choice([24.0, 28.0, 44.0, 48.0])
        pane_area = round(width * height / 1e6, 3)
        glass_rows.append(
            (
                elevation_row,
                rng.choice(["4/16/4 Ug 1.1", "44.2/16/4 Ug 1.0", "4/14/4/14/4 Ug 0.6", "6/16/33.2"]),
                "Double glazing" if thickness < 40 else "Triple glazing",
                f"Field {pane}",
                width,
                height,
                pane_area,
                round(pane_area * thickness * 0.9, 2),
                thickness,
                rng.choice([0.6, 1.0, 1.1]),
                1.0,
            )
        )
    con.executemany(
        "INSERT INTO Glass (ElevationID, Name, Description, Position, Width, Height, Area, Weight, Thickness,"
        " UValue, Amount) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        glass_rows,
    )
    con.executemany(
        "INSERT INTO Insertions (ElevationID, Name, Type, Width, Height, OpeningType, Amount)"
        " VALUES (?, ?, ?, ?, ?, ?, 1.0)",
        [
            (
                elevation_row,
                f"Vent {i}",
                rng.choice(["Vent", "Fixed", "Door leaf"]),
                round(rng.uniform(400, 1200), 1),
                round(rng.uniform(600, 2400), 1),
                rng.choice(["Turn/tilt", "Turn", "Fixed", "Tilt"]),
            )
            for i in range(1, panes + 1)
        ],
    )
    con.executemany("INSERT INTO Suppliers (Name, City, Country) VALUES (?, ?, ?)", _SUPPLIERS)
    con.executemany(
        "INSERT INTO Manufacturers (Name, ShortName) VALUES (?, ?)",
        [(name, name.split()[0][:4].upper()) for name, _, _ in _SUPPLIERS],
    )
    con.execute(
        "INSERT INTO Colors (Code, Name, Surface, PricePerKg) VALUES (?, ?, 'Powder coating', ?)",
        (elevation.color[0], elevation.color[1], round(rng.uniform(2.5, 6.0), 2)),
    )
    con.executemany(
        "INSERT INTO LabourTimes (ElevationID, Name, Minutes, Category) VALUES (?, ?, ?, ?)",
        [
            (elevation_row, step, round(rng.uniform(2, 90), 1), category)
            for step, category in [
                ("Cutting", "Workshop"),
                ("Milling", "Workshop"),
                ("Crimping", "Workshop"),
                ("Glazing", "Workshop"),
                ("Hardware", "Workshop"),
                ("Mounting", "Site"),
                ("Sealing", "Site"),
            ]
        ],
    )
    con.executemany(
        "INSERT INTO LabourCosts (ElevationID, Name, HourlyRate, Hours, Total) VALUES (?, ?, ?, ?, ?)",
        [
            (elevation_row, name, rate, hours, round(rate * hours, 2))
            for name, rate, hours in [
                ("Workshop", 48.0, round(rng.uniform(1, 8), 2)),
                ("Site", 55.0, round(rng.uniform(1, 6), 2)),
            ]
        ],
    )
    con.executemany(
        "INSERT INTO CalcItemNames (CalcItemNameID, Name) VALUES (?, ?)", list(enumerate(_CALC_NAMES, 1))
    )
    con.executemany(
        "INSERT INTO MountingLines (ElevationID, Name, Length, Side) VALUES (?, ?, ?, ?)",
        [
            (elevation_row, f"Anchor line {side}", length, side)
            for side, length in [
                ("Top", elevation.width),
                ("Bottom", elevation.width),
                ("Left", elevation.height),
                ("Right", elevation.height),
            ]
        ],
    )
    con.executemany(
        "INSERT INTO UValue (ElevationID, Name, U, U_Unit, Area, Area_Unit)"
        " VALUES (?, ?, ?, 'W/m²K', ?, 'm²')",
        [
            (elevation_row, "Uw", round(rng.uniform(0.8, 1.6), 2), area),
            (elevation_row, "Uf", round(rng.uniform(1.2, 2.2), 2), round(area * 0.25, 3)),
            (elevation_row, "Ug", rng.choice([0.6, 1.0, 1.1]), round(area * 0.75, 3)),
        ],
    )
    con.execute(
        "INSERT INTO ElevationCE (ElevationID, Standard, AirPermeability, WaterTightness, WindResistance, Uw)"
        " VALUES (?, 'EN 14351-1', ?, ?, ?, ?)",
        (
            elevation_row,
            rng.choice(["Class 3", "Class 4"]),
            rng.choice(["E750", "E1050", "9A"]),
            rng.choice(["C3", "C4", "C5"]),
            round(rng.uniform(0.8, 1.6), 2),
        ),
    )


def _fill_bulk_tables(
    con: sqlite3.Connection, rng: random.Random, source: PartsListSource, target_bytes: int
) -> None:
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    code = source.elevation.system.code
    color = source.elevation.color[0]
    rand = rng.random
    randint = rng.randint
    # Real parts lists repeat the same few hundred articles many times, and
    # drawing every row afresh would make a ~1 MB file cost ~100 ms to build;
    # so each file draws a pool of rows once and cycles through it.
    pool = 256
    articles = [
        (
            f"{code}-{randint(100, 999)}.{randint(1000, 9999)}",
            _ARTICLE_WORDS[randint(0, 16)],
            float(randint(1, 40)),
            "pcs" if rand() < 0.8 else "m",
            color,
            randint(1, 5),
            randint(1, 5),
            float(randint(1, 50)),
            round(rand() * 80, 2),
            round(rand() * 3, 3),
        )
        for _ in range(pool)
    ]
    profiles = [
        (
            f"{code}-{randint(100, 999)}.{randint(1000, 9999)}",
            f"{_PROFILE_WORDS[randint(0, 9)]} {randint(40, 120)} mm",
            round(200 + rand() * 5800, 1),
            float(randint(1, 4)),
            color,
            45.0 if rand() < 0.7 else 90.0,
            45.0 if rand() < 0.7 else 90.0,
            f"Pos {randint(1, 60)}",
            round(rand() * 250, 2),
            round(rand() * 12, 3),
        )
        for _ in range(pool)
    ]
    calc_items = [
        (
            randint(1, len(_CALC_NAMES)),
            round(rand() * 1500, 2),
            float(randint(1, 12)),
            "" if rand() < 0.7 else "manual correction",
        )
        for _ in range(pool)
    ]
    round_number = 0
    # Grow in chunks and check the page count, so the file lands within one
    # chunk (~25 KB) of the target whatever the text lengths turn out to be.
    while con.execute("PRAGMA page_count").fetchone()[0] * page_size < target_bytes:
        shift = round_number * 37 % pool
        round_number += 1
        con.executemany(
            "INSERT INTO Articles (ElevationID, ArticleCode, Description, Amount, Unit, Color, SupplierID,"
            " ManufacturerID, PackagingUnit, Price, Weight) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            articles[shift:] + articles[:shift],
        )
        con.executemany(
            "INSERT INTO Profiles (ElevationID, ArticleCode, Description, Length, Length_Unit, Amount, Color,"
            " Angle1, Angle2, Position, Price, Weight) VALUES (1, ?, ?, ?, 'mm', ?, ?, ?, ?, ?, ?, ?)",
            profiles[shift:] + profiles[:shift],
        )
        con.executemany(
            "INSERT INTO CalcDetailItems (CalcItemNameID, ElevationID, Value, Quantity, Remark)"
            " VALUES (?, 1, ?, ?, ?)",
            calc_items[shift:] + calc_items[:shift],
        )


class PartsListCache:
    """Thread-safe LRU of built files, keyed by (elevation id, versionId, target)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max(max_entries, 0)
        self._entries: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, int], build: Callable[[], bytes]) -> bytes:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return cached
            self.misses += 1
        # Built outside the lock so one slow build never stalls other sessions;
        # two racing builds of the same key produce identical bytes.
        data = build()
        with self._lock:
            self._entries[key] = data
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return data
