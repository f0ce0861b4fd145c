"""Pure math of the robot device: camera pixels <-> world points, the arm's reach, motion plans.

Nothing here touches the simulator, so every number is testable exactly. Matrices are 16-tuples
in OpenGL's column-major order, as ``pybullet.computeViewMatrix`` and
``computeProjectionMatrixFOV`` return them (``m[col * 4 + row]``); ``view_matrix`` and
``projection_matrix`` compute the same values.

A pixel becomes a world point through the depth buffer (OpenGL window depth in [0, 1]) and the
camera's intrinsics: pixel centre -> normalised device coordinates -> eye space (the projection
matrix, undone analytically) -> world (the rigid view matrix, transposed). ``world_to_pixel`` is
the inverse, used to write scenario points and to test the round trip.

The Panda's reach is modelled as in ``Workspace``: a point is refused (ActionRejected, which goes
back to the model) when it lies off the table, too near the base or beyond the arm's reach with
the gripper pointing down. Motions are lists of ``Waypoint`` data that the device executes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pixelpilot.agent.errors import ActionRejected

__all__ = [
    "CARRY",
    "Camera",
    "GripperState",
    "Matrix",
    "Vec3",
    "Waypoint",
    "Workspace",
    "in_tray",
    "linear_depth",
    "pixel_to_world",
    "plan_move",
    "plan_pick",
    "plan_place",
    "projection_matrix",
    "resting_on",
    "view_matrix",
    "world_to_pixel",
]

Vec3 = tuple[float, float, float]
Matrix = tuple[float, ...]
"""A 4x4 matrix as 16 floats, column-major (``m[col * 4 + row]``), as OpenGL and pybullet."""
GripperState = Literal["open", "close"]


# -- camera ------------------------------------------------------------------------------------
def _sub(a: Vec3, b: Vec3) -> Vec3:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _cross(a: Vec3, b: Vec3) -> Vec3:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _unit(a: Vec3) -> Vec3:
    n = math.sqrt(_dot(a, a))
    if n == 0:
        raise ValueError("a zero vector has no direction")
    return a[0] / n, a[1] / n, a[2] / n


def view_matrix(eye: Vec3, target: Vec3, up: Vec3) -> Matrix:
    """gluLookAt: world -> eye coordinates (the camera looks down its -z axis)."""
    f = _unit(_sub(target, eye))
    s = _unit(_cross(f, up))
    u = _cross(s, f)
    return (
        s[0], u[0], -f[0], 0.0,
        s[1], u[1], -f[1], 0.0,
        s[2], u[2], -f[2], 0.0,
        -_dot(s, eye), -_dot(u, eye), _dot(f, eye), 1.0,
    )  # fmt: skip


def projection_matrix(fov_deg: float, aspect: float, near: float, far: float) -> Matrix:
    """gluPerspective: vertical field of view ``fov_deg``, ``aspect`` = width / height."""
    if not (0 < near < far) or not 0 < fov_deg < 180 or aspect <= 0:
        raise ValueError(f"bad perspective: fov {fov_deg}, aspect {aspect}, near {near}, far {far}")
    f = 1.0 / math.tan(math.radians(fov_deg) / 2)
    return (
        f / aspect, 0.0, 0.0, 0.0,
        0.0, f, 0.0, 0.0,
        0.0, 0.0, (far + near) / (near - far), -1.0,
        0.0, 0.0, 2 * far * near / (near - far), 0.0,
    )  # fmt: skip


def _m(m: Matrix, row: int, col: int) -> float:
    return m[col * 4 + row]


def _near_far(proj: Matrix) -> tuple[float, float]:
    if len(proj) != 16 or _m(proj, 3, 2) != -1.0 or _m(proj, 3, 3) != 0.0:
        raise ValueError("not a perspective projection matrix (column-major, OpenGL)")
    a, b = _m(proj, 2, 2), _m(proj, 2, 3)  # (f+n)/(n-f), 2fn/(n-f)
    return b / (a - 1), b / (a + 1)


def linear_depth(depth: float, near: float, far: float) -> float:
    """Distance along the camera axis (metres) of an OpenGL depth-buffer value in [0, 1]."""
    return far * near / (far - (far - near) * depth)


def pixel_to_world(
    x: float, y: float, depth: float, view: Matrix, proj: Matrix, width: int, height: int
) -> Vec3:
    """World point seen at pixel (x, y) (its centre) whose depth-buffer value is ``depth``.

    Pixel rows grow downwards, as in the image; OpenGL's y grows upwards.
    """
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"a depth-buffer value lies in [0, 1], got {depth}")
    near, far = _near_far(proj)
    xn = 2 * (x + 0.5) / width - 1
    yn = 1 - 2 * (y + 0.5) / height
    ze = -linear_depth(depth, near, far)  # eye space looks down -z
    # clip x = P00 xe + P02 ze, w = -ze  =>  xe = (xn * -ze - P02 ze) / P00 (same for y)
    xe = (xn * -ze - _m(proj, 0, 2) * ze) / _m(proj, 0, 0)
    ye = (yn * -ze - _m(proj, 1, 2) * ze) / _m(proj, 1, 1)
    pe = (xe, ye, ze)
    # view = [R | t] (rigid): world = R^T (pe - t)
    t = (_m(view, 0, 3), _m(view, 1, 3), _m(view, 2, 3))
    d = _sub(pe, t)
    return (
        _m(view, 0, 0) * d[0] + _m(view, 1, 0) * d[1] + _m(view, 2, 0) * d[2],
        _m(view, 0, 1) * d[0] + _m(view, 1, 1) * d[1] + _m(view, 2, 1) * d[2],
        _m(view, 0, 2) * d[0] + _m(view, 1, 2) * d[1] + _m(view, 2, 2) * d[2],
    )


def world_to_pixel(
    point: Vec3, view: Matrix, proj: Matrix, width: int, height: int
) -> tuple[float, float, float]:
    """(x, y, depth) of a world point: pixel coordinates where pixel i's centre is at i (the
    convention of ``pixel_to_world``; round them for the pixel) and its depth-buffer value."""
    clip = [
        sum(_m(proj, r, k) * sum(_m(view, k, c) * v for c, v in enumerate((*point, 1.0)))
            for k in range(4))
        for r in range(4)
    ]  # fmt: skip
    if clip[3] <= 0:
        raise ValueError(f"point {point} is behind the camera")
    xn, yn, zn = clip[0] / clip[3], clip[1] / clip[3], clip[2] / clip[3]
    return (xn + 1) * width / 2 - 0.5, (1 - yn) * height / 2 - 0.5, (zn + 1) / 2


@dataclass(frozen=True)
class Camera:
    """A fixed pinhole camera: pose, vertical field of view, clip planes and image size."""

    eye: Vec3
    target: Vec3
    up: Vec3 = (0.0, 0.0, 1.0)
    fov_deg: float = 50.0
    near: float = 0.1
    far: float = 3.0
    width: int = 640
    height: int = 480

    @property
    def view(self) -> Matrix:
        return view_matrix(self.eye, self.target, self.up)

    @property
    def projection(self) -> Matrix:
        return projection_matrix(self.fov_deg, self.width / self.height, self.near, self.far)

    def pixel_to_world(self, x: float, y: float, depth: float) -> Vec3:
        return pixel_to_world(x, y, depth, self.view, self.projection, self.width, self.height)

    def world_to_pixel(self, point: Vec3) -> tuple[float, float, float]:
        return world_to_pixel(point, self.view, self.projection, self.width, self.height)


# -- workspace ---------------------------------------------------------------------------------
def _mm(p: Vec3) -> str:
    return "(" + ", ".join(f"{v * 1000:.0f}" for v in p) + ") mm"


@dataclass(frozen=True)
class Workspace:
    """Where the gripper can go pointing down: a table box and the arm's reach.

    The Panda's wrist sits ``wrist_offset`` above the grasp point when the gripper points down;
    the wrist must lie within ``reach`` of the shoulder (``shoulder`` above the base) and the
    grasp point at least ``min_radius`` from the base's vertical axis (measured with pybullet's
    IK: 0.75-0.77 m at every height; 0.72 keeps a margin).
    """

    base: Vec3 = (0.0, 0.0, 0.0)
    table_x: tuple[float, float] = (-0.25, 1.25)
    table_y: tuple[float, float] = (-0.5, 0.5)
    table_z: float = 0.0
    shoulder: float = 0.333
    wrist_offset: float = 0.21
    reach: float = 0.72
    min_radius: float = 0.25
    max_height: float = 0.5

    def on_table(self, p: Vec3, tolerance: float = 0.01) -> bool:
        """Whether ``p`` lies over the table top and not below it (the floor)."""
        return (
            self.table_x[0] <= p[0] <= self.table_x[1]
            and self.table_y[0] <= p[1] <= self.table_y[1]
            and p[2] >= self.table_z - tolerance
        )

    def check_surface(self, p: Vec3, what: str) -> None:
        """Raise ActionRejected when the point seen under a pixel is not on the table."""
        if not self.on_table(p):
            where = "the floor" if p[2] < self.table_z - 0.01 else "beyond the table's edge"
            raise ActionRejected(
                f"{what}: that point is off the table ({where}, at {_mm(p)}); "
                "point at something on the table"
            )

    def check(self, p: Vec3, what: str) -> None:
        """Raise ActionRejected (for the model) when the gripper cannot go to ``p``."""
        self.check_surface(p, what)
        dx, dy = p[0] - self.base[0], p[1] - self.base[1]
        radius = math.hypot(dx, dy)
        if radius < self.min_radius:
            raise ActionRejected(
                f"{what}: the gripper would go to {_mm(p)}, {radius:.2f} m from the arm's base: "
                f"too close to it (at least {self.min_radius:.2f} m); point further from the robot"
            )
        height = p[2] - self.table_z
        if height > self.max_height:
            raise ActionRejected(
                f"{what}: the gripper would go to {_mm(p)}, {height:.2f} m above the table; "
                f"it goes at most {self.max_height:.2f} m high"
            )
        dz = p[2] + self.wrist_offset - (self.base[2] + self.shoulder)
        if math.hypot(radius, dz) > self.reach:
            limit = math.sqrt(max(self.reach**2 - dz**2, 0.0))
            raise ActionRejected(
                f"{what}: the gripper would go to {_mm(p)}, out of the arm's reach "
                f"({radius:.2f} m from its base; it reaches {limit:.2f} m at that height); "
                "point nearer the robot"
            )


# -- motion plans ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Waypoint:
    """Move the grasp point (between the fingertips, gripper pointing down) to ``position``,
    then set the gripper when ``gripper`` is given."""

    name: str
    position: Vec3
    gripper: GripperState | None = None


APPROACH = 0.12
"""How far above the grasp or release point the gripper comes in and leaves (metres)."""
GRIP_DEPTH = 0.02
"""How far below the top surface the fingers close (half a 4 cm block)."""
FINGER_CLEARANCE = 0.012
"""The lowest grasp point above the table: the fingertips reach ~1 cm below it."""
DROP_GAP = 0.01
"""How far above the surface a held object is released."""
CARRY: Vec3 = (0.37, 0.0, 0.42)
"""Where a pick or place ends: the grasp point at the Panda's home pose, above the base, out of
the camera's view of the table, so the next image shows the table without the arm over it."""


def grasp_height(surface_z: float, table_z: float) -> float:
    """Height of the grasp point for an object whose top (under the pixel) is at surface_z."""
    return max(surface_z - GRIP_DEPTH, table_z + FINGER_CLEARANCE)


def plan_pick(
    surface: Vec3, ws: Workspace, what: str = "pick", carry: Vec3 | None = CARRY
) -> list[Waypoint]:
    """Open above the object, descend, close, lift, carry it to ``carry`` (None: stay).
    ``surface``: the point under the pixel.

    Raises ActionRejected (``what`` starts its message) when a waypoint is out of reach.
    """
    ws.check_surface(surface, what)
    x, y, z = surface
    gz = grasp_height(z, ws.table_z)
    plan = [
        Waypoint("above", (x, y, gz + APPROACH), "open"),
        Waypoint("grasp", (x, y, gz), "close"),
        Waypoint("lift", (x, y, gz + APPROACH)),
    ]
    if carry is not None:
        plan.append(Waypoint("carry", carry))
    for w in plan:
        ws.check(w.position, what)
    return plan


def plan_place(
    surface: Vec3,
    hold_offset: float,
    ws: Workspace,
    what: str = "place",
    carry: Vec3 | None = CARRY,
) -> list[Waypoint]:
    """Carry above the point, lower the held object to just over the surface, open, retreat,
    return to ``carry`` (None: stay above the point).

    ``hold_offset``: grasp point height minus the held object's bottom (measured when held).
    """
    ws.check_surface(surface, what)
    x, y, z = surface
    rz = max(z, ws.table_z) + hold_offset + DROP_GAP
    plan = [
        Waypoint("above", (x, y, rz + APPROACH)),
        Waypoint("release", (x, y, rz), "open"),
        Waypoint("retreat", (x, y, rz + APPROACH)),
    ]
    if carry is not None:
        plan.append(Waypoint("clear", carry))
    for w in plan:
        ws.check(w.position, what)
    return plan


def plan_move(
    surface: Vec3, height: float, ws: Workspace, what: str = "move_effector"
) -> list[Waypoint]:
    """Move the grasp point to ``height`` metres above the surface point."""
    ws.check_surface(surface, what)
    x, y, z = surface
    target = Waypoint("target", (x, y, max(z, ws.table_z) + height))
    ws.check(target.position, what)
    return [target]


# -- scene predicates --------------------------------------------------------------------------
def in_tray(center: Vec3, tray_center: Vec3, inner_half: float, rim: float) -> bool:
    """Whether an object's centre lies inside a square tray's walls, below its rim."""
    return (
        abs(center[0] - tray_center[0]) <= inner_half
        and abs(center[1] - tray_center[1]) <= inner_half
        and center[2] - tray_center[2] <= rim
    )


def resting_on(
    top_min: Vec3, top_max: Vec3, bottom_min: Vec3, bottom_max: Vec3, tolerance: float = 0.006
) -> bool:
    """Whether box ``top`` (its AABB corners) rests on box ``bottom``: its underside at the
    other's top face and its centre over that face."""
    cx, cy = (top_min[0] + top_max[0]) / 2, (top_min[1] + top_max[1]) / 2
    return (
        abs(top_min[2] - bottom_max[2]) <= tolerance
        and bottom_min[0] <= cx <= bottom_max[0]
        and bottom_min[1] <= cy <= bottom_max[1]
    )
