"""The sandbox's LogiKal world: directories → projects → phases → elevations.

Generated from a seed, so ids, names and dates repeat run after run; mutation
hooks draw from a second seeded stream, so the same sequence of mutations
yields the same ids too. Objects render to the swagger's field names through
`to_api()`; everything else (parent links, lock/corrupt flags, system codes
for the parts list) stays server-side.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

ZERO_GUID = "00000000-0000-0000-0000-000000000000"

# Generated dates fall between these, so a seed gives the same dates on any day.
_EPOCH_START = 1_672_531_200  # 2023-01-01 UTC
_EPOCH_END = 1_748_736_000  # 2025-06-01 UTC

_ROOT_NAMES = ["Demo Odoo", "Projects 2024", "Müller & Söhne", "Archive", "Tenders 2025", "Service Jobs"]
_CHILD_NAMES = ["Sub {n}", "Building {letter}", "Lot {n}"]
_PROJECT_PREFIXES = ["DOS", "PRJ", "ALU", "FAC", "WIN"]
_PEOPLE = ["Nick ", "Anna Peeters", "Jan De Smet", "Lotte", "M. Jansen", ""]
_USERS = ["Nick", "anna", "jds", "lotte"]
_ROOMS = ["Kitchen", "Living room", "Bedroom 1", "Bedroom 2", "Entrance", "Stairwell", "Office", ""]
_COLORS = [
    ("RAL 9016", "RAL 9016 Traffic white matt"),
    ("RAL 7016", "RAL 7016 Anthracite grey matt"),
    ("RAL 9005", "RAL 9005 Jet black fine texture"),
    ("RAL 7021", "RAL 7021 Black grey matt"),
    ("RAL 9010", "RAL 9010 Pure white gloss"),
    ("RAL 8019", "RAL 8019 Grey brown matt"),
]
_SURFACES = ["Powder coating", "Anodised", "Powder coating Qualicoat"]


@dataclass(frozen=True)
class ProfileSystem:
    code: str
    name: str
    long_name: str
    kg_per_m2: float


SYSTEMS = [
    ProfileSystem("MASL8", "MasterLine 8", "Reynaers MasterLine 8", 38.0),
    ProfileSystem("CS77", "CS 77", "Reynaers CS 77", 34.0),
    ProfileSystem("AWS75", "AWS 75.SI+", "Schüco AWS 75.SI+", 36.5),
    ProfileSystem("MB86", "MB-86", "Aluprof MB-86 SI", 35.0),
    ProfileSystem("CW50", "CW 50", "Reynaers CW 50 curtain wall", 42.0),
]

# Type/state values are not documented anywhere we could read (docs/logikal-api.md §7); these
# are plausible placeholders, kept stable so tests can rely on them.
_TYPES = [
    ("Window", "Window, {parts} vents, turn/tilt"),
    ("Door", "Door, single leaf, {parts} panels"),
    ("SlidingDoor", "Lift-and-slide door, {parts} panels"),
    ("Facade", "Curtain wall, {parts} fields"),
]
ELEVATION_STATE = "Calculated"


@dataclass
class Directory:
    name: str
    path: str
    parent_path: str | None

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path}


@dataclass
class Elevation:
    id: str
    project_id: str
    phase_id: str
    version_id: str
    name: str
    amount: float
    type: str
    automatic_description: str
    model_description: str
    user_description: str
    system: ProfileSystem
    color: tuple[str, str]
    surface_name: str
    created_by_user: str
    created_date: int
    changed_date: int
    width: float
    height: float
    fields: int = 1
    is_in_recycle_bin: bool = False
    locked: bool = False
    # How its parts list is broken at the source (`parts_lists.BrokenKind`), same bytes every time.
    corrupt: str | None = None

    def to_api(self) -> dict[str, Any]:
        color = self.color[0]
        return {
            "id": self.id,
            "versionId": self.version_id,
            "name": self.name,
            "amount": self.amount,
            "isInRecycleBin": self.is_in_recycle_bin,
            "automaticDescription": self.automatic_description,
            "systemDescription": self.system.long_name,
            "modelDescription": self.model_description,
            "userDescription": self.user_description,
            "surfaceOfBaseElement": {"name": self.surface_name, "colorInside": color, "colorOutside": color},
            "surfaceOfInsertions": {"name": "Glazing beads", "colorInside": color, "colorOutside": color},
            "createdByUser": self.created_by_user,
            "createdDate": self.created_date,
            "changedDate": self.changed_date,
            "width": self.width,
            "height": self.height,
            "isElementPricelistElevation": False,
            "elementPricelistId": ZERO_GUID,
            "type": self.type,
            "state": ELEVATION_STATE,
        }


@dataclass
class Phase:
    id: str
    name: str
    description: str
    elevation_ids: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass
class Project:
    id: str
    name: str
    directory_path: str
    created_date: int
    changed_date: int
    job_number: str
    offer_number: str
    person_in_charge: str
    estimated: bool
    is_deleted: bool = False
    phases: list[Phase] = field(default_factory=list)
    elevation_counter: int = 0

    def phase(self, phase_id: str) -> Phase | None:
        return next((phase for phase in self.phases if phase.id == phase_id), None)

    def to_api(self) -> dict[str, Any]:
        """Every field but the server-side ones, under the swagger's camelCase name."""
        return {
            _camel_case(f.name): getattr(self, f.name)
            for f in fields(self)
            if f.name not in _PROJECT_SERVER_SIDE
        }


_PROJECT_SERVER_SIDE = frozenset({"directory_path", "phases", "elevation_counter"})


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


class LogikalTree:
    """The whole data set plus mutations; callers hold the sandbox lock."""

    def __init__(self, seed: int, wall_time: Callable[[], float]) -> None:
        self._rng = random.Random(seed)
        # Mutations are stamped with this clock (the sandbox's), never the machine's directly.
        self._wall_time = wall_time
        # Mutations draw from their own stream so that adding a mutation in a
        # test never shifts the generated tree's ids.
        self._mutation_rng = random.Random(seed * 7919 + 1)
        self.directories: dict[str, Directory] = {}
        self.children: dict[str | None, list[str]] = {None: []}
        self.projects: dict[str, Project] = {}
        self.projects_by_directory: dict[str, list[str]] = {}
        self.elevations: dict[str, Elevation] = {}
        # Directories a listing names besides its children (a malformed tree: a cycle); not the truth.
        self.listed_also: dict[str | None, list[str]] = {}
        self._project_counter = 0

    # -- generation ---------------------------------------------------------

    def generate(
        self,
        root_directories: int,
        directory_depth: int,
        subdirectories_per_directory: int,
        projects_per_directory: int,
        phases_per_project: int,
        elevations_per_phase: int,
    ) -> None:
        rng = self._rng

        def build(parent: str | None, level: int) -> None:
            count = root_directories if parent is None else subdirectories_per_directory
            for index in range(count):
                name = _root_name(index) if parent is None else _child_name(index)
                path = self._insert_directory(parent, name)
                for _ in range(projects_per_directory):
                    self._new_project(rng, path, phases_per_project, elevations_per_phase, generated=True)
                if level + 1 < directory_depth:
                    build(path, level + 1)

        build(None, 0)

    def _guid(self, rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _insert_directory(self, parent: str | None, name: str) -> str:
        if not name or "/" in name:
            raise ValueError(f"invalid directory name {name!r}")
        if parent is not None and parent not in self.directories:
            raise KeyError(f"unknown directory {parent!r}")
        path = name if parent is None else f"{parent}/{name}"
        if path in self.directories:
            raise ValueError(f"directory {path!r} already exists")
        self.directories[path] = Directory(name=name, path=path, parent_path=parent)
        self.children[parent].append(path)
        self.children[path] = []
        self.projects_by_directory[path] = []
        return path

    def _new_project(
        self,
        rng: random.Random,
        directory_path: str,
        phases: int,
        elevations_per_phase: int,
        *,
        generated: bool,
        name: str | None = None,
    ) -> Project:
        self._project_counter += 1
        if generated:
            created = rng.randint(_EPOCH_START, _EPOCH_END - 90 * 86400)
            changed = rng.randint(created, _EPOCH_END)
        else:
            created = changed = int(self._wall_time())
        project = Project(
            id=self._guid(rng),
            name=name or f"{rng.choice(_PROJECT_PREFIXES)}{22000 + self._project_counter * 37 % 9000:05d}",
            directory_path=directory_path,
            created_date=created,
            changed_date=changed,
            job_number=f"{rng.randint(1, 9999):010d}",
            offer_number=f"OFF{rng.randint(10000, 99999)}" + rng.choice(["", " NG", " rev2"]),
            person_in_charge=rng.choice(_PEOPLE),
            estimated=rng.random() < 0.4,
        )
        for number in range(1, phases + 1):
            # Every project's first phase is LogiKal's default phase, whose id is
            # the all-zero GUID in every project (docs/logikal-api.md §7).
            phase_id = ZERO_GUID if number == 1 else self._guid(rng)
            phase = Phase(
                id=phase_id,
                name=f"Phase {number}",
                description=""
                if number == 1
                else rng.choice(["Ground floor", "First floor", "Annex", "Option B"]),
            )
            project.phases.append(phase)
            for _ in range(elevations_per_phase):
                self._new_elevation(rng, project, phase, generated=generated)
        self.projects[project.id] = project
        self.projects_by_directory[directory_path].append(project.id)
        return project

    def _new_elevation(
        self, rng: random.Random, project: Project, phase: Phase, *, generated: bool, name: str | None = None
    ) -> Elevation:
        project.elevation_counter += 1
        type_name, description = rng.choice(_TYPES)
        parts = rng.randint(1, 4)
        if generated:
            created = rng.randint(project.created_date, project.changed_date)
            changed = rng.randint(created, project.changed_date)
        else:
            created = changed = self._now_after(project.created_date)
        elevation = Elevation(
            id=self._guid(rng),
            project_id=project.id,
            phase_id=phase.id,
            version_id=self._guid(rng),
            name=name or f"P{project.elevation_counter}",
            amount=float(rng.randint(1, 6)),
            type=type_name,
            automatic_description=description.format(parts=parts),
            model_description=f"{parts}-part {type_name.lower()}",
            user_description=rng.choice(_ROOMS),
            system=rng.choice(SYSTEMS),
            color=rng.choice(_COLORS),
            surface_name=rng.choice(_SURFACES),
            created_by_user=rng.choice(_USERS),
            created_date=created,
            changed_date=changed,
            width=float(round(rng.uniform(600, 6000))),
            height=float(round(rng.uniform(600, 3200))),
            fields=parts,
        )
        phase.elevation_ids.append(elevation.id)
        self.elevations[elevation.id] = elevation
        return elevation

    # -- reads --------------------------------------------------------------

    def directory_children(self, path: str | None) -> list[Directory]:
        return [self.directories[child] for child in self.children.get(path, [])]

    def directory_listing(self, path: str | None) -> list[Directory]:
        """What `GET /directories` answers in `path`: its children, then whatever `list_also` added."""
        extra = [self.directories[p] for p in self.listed_also.get(path, []) if p in self.directories]
        return self.directory_children(path) + extra

    def list_also(self, path: str | None, listed: str) -> None:
        """Make the listing of `path` (None: the roots) name the existing directory `listed` too."""
        if path is not None and path not in self.directories:
            raise KeyError(f"unknown directory {path!r}")
        if listed not in self.directories:
            raise KeyError(f"unknown directory {listed!r}")
        self.listed_also.setdefault(path, []).append(listed)

    def iter_directories(self) -> Iterator[Directory]:
        """Depth-first, parents before children."""

        def walk(parent: str | None) -> Iterator[Directory]:
            for child in self.children.get(parent, []):
                yield self.directories[child]
                yield from walk(child)

        return walk(None)

    def projects_in(self, directory_path: str) -> list[Project]:
        return [self.projects[pid] for pid in self.projects_by_directory.get(directory_path, [])]

    def project(self, project_id: str) -> Project:
        try:
            return self.projects[project_id]
        except KeyError:
            raise KeyError(f"unknown project {project_id!r}") from None

    def phase(self, project_id: str, phase_id: str) -> Phase:
        phase = self.project(project_id).phase(phase_id)
        if phase is None:
            raise KeyError(f"unknown phase {phase_id!r} in project {project_id!r}")
        return phase

    def elevation(self, elevation_id: str) -> Elevation:
        try:
            return self.elevations[elevation_id]
        except KeyError:
            raise KeyError(f"unknown elevation {elevation_id!r}") from None

    def elevations_in(self, project_id: str, phase_id: str) -> list[Elevation]:
        return [self.elevations[eid] for eid in self.phase(project_id, phase_id).elevation_ids]

    # -- mutations ----------------------------------------------------------

    def change_elevation(self, elevation_id: str) -> Elevation:
        elevation = self.elevation(elevation_id)
        elevation.version_id = self._guid(self._mutation_rng)
        elevation.changed_date = self._now_after(elevation.changed_date)
        elevation.corrupt = None
        return elevation

    def add_elevation(self, project_id: str, phase_id: str, name: str | None) -> Elevation:
        project = self.project(project_id)
        return self._new_elevation(
            self._mutation_rng, project, self.phase(project_id, phase_id), generated=False, name=name
        )

    def delete_elevation(self, elevation_id: str) -> Elevation:
        elevation = self.elevations.pop(elevation_id, None)
        if elevation is None:
            raise KeyError(f"unknown elevation {elevation_id!r}")
        self.phase(elevation.project_id, elevation.phase_id).elevation_ids.remove(elevation_id)
        return elevation

    def delete_phase(self, project_id: str, phase_id: str) -> Phase:
        """Remove a phase with its elevations; the default phase stays (LogiKal always has it)."""
        project = self.project(project_id)
        phase = self.phase(project_id, phase_id)
        if phase_id == ZERO_GUID:
            raise ValueError(f"the default phase of project {project_id!r} cannot be deleted")
        for elevation_id in phase.elevation_ids:
            self.elevations.pop(elevation_id, None)
        project.phases.remove(phase)
        return phase

    def add_project(
        self, directory_path: str, name: str | None, phases: int, elevations_per_phase: int
    ) -> Project:
        if directory_path not in self.directories:
            raise KeyError(f"unknown directory {directory_path!r}")
        if phases < 1:
            raise ValueError("a LogiKal project always has at least its default phase")
        return self._new_project(
            self._mutation_rng, directory_path, phases, elevations_per_phase, generated=False, name=name
        )

    def delete_project(self, project_id: str) -> Project:
        project = self.projects.pop(project_id, None)
        if project is None:
            raise KeyError(f"unknown project {project_id!r}")
        self.projects_by_directory[project.directory_path].remove(project_id)
        for phase in project.phases:
            for elevation_id in phase.elevation_ids:
                self.elevations.pop(elevation_id, None)
        return project

    def add_directory(self, parent_path: str | None, name: str) -> str:
        return self._insert_directory(parent_path, name)

    def delete_directory(self, path: str) -> list[str]:
        """Remove a directory with its sub-directories and their projects; returns the paths removed."""
        directory = self.directories.get(path)
        if directory is None:
            raise KeyError(f"unknown directory {path!r}")
        removed: list[str] = []

        def remove(current: str) -> None:
            for child in list(self.children.get(current, [])):
                remove(child)
            for project_id in list(self.projects_by_directory.get(current, [])):
                self.delete_project(project_id)
            del self.directories[current], self.children[current], self.projects_by_directory[current]
            removed.append(current)

        remove(path)
        self.children[directory.parent_path].remove(path)
        return removed

    def touch_project(self, project_id: str) -> None:
        project = self.project(project_id)
        project.changed_date = self._now_after(project.changed_date)

    def _now_after(self, previous: int) -> int:
        # Unix seconds, but strictly increasing, so two edits within one second
        # still look like two changes to a client comparing changedDate.
        return max(int(self._wall_time()), previous + 1)


def _root_name(index: int) -> str:
    base = _ROOT_NAMES[index % len(_ROOT_NAMES)]
    return base if index < len(_ROOT_NAMES) else f"{base} {index // len(_ROOT_NAMES) + 1}"


def _child_name(index: int) -> str:
    pattern = _CHILD_NAMES[index % len(_CHILD_NAMES)]
    n = index // len(_CHILD_NAMES) + 1
    letter = chr(ord("A") + (n - 1) % 26) + ("" if n <= 26 else str((n - 1) // 26))
    return pattern.format(n=n, letter=letter)
