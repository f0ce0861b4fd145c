"""The robot device: a Franka Panda at a table in pybullet, seen through a fixed camera.

The observation is the camera's RGB image (TinyRenderer, CPU only). Actions point at image
pixels: the device reads the depth buffer at the pixel, turns it into a world point with the
camera's own view/projection matrices (``robot_plan.pixel_to_world``), checks the arm can reach
it (``Workspace.check``: an unreachable point goes back to the model as ActionRejected), plans
waypoints (``robot_plan.plan_pick`` ...) and drives the arm there with IK and position-controlled
joints, stepping the physics; grasps hold by contact and friction only (no welding constraint).
``execute`` returns every stage it really ran: the world target, each waypoint with the joint
targets, steps and the error left, the gripper width and what it holds.

Scenes (``robot_scenes``, deterministic for a seed): ``tray`` (a red cube, two distractors and
a tray), ``stack`` (two blocks), ``objects`` (five named objects and a tray). ``state()`` reports object
positions in mm, what lies in the tray, what rests on what and what the gripper holds.
If the physics server goes away (``pybullet.disconnect``), the next call raises DeviceLost.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Literal, assert_never

import numpy as np
from PIL import Image

from pixelpilot.agent.actions import (
    ROBOT_KINDS,
    Action,
    AskUser,
    Click,
    Drag,
    Finish,
    Gripper,
    Home,
    Hotkey,
    LongPress,
    Move,
    MoveEffector,
    OpenApp,
    Pick,
    Place,
    Scroll,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.errors import ActionRejected, ConfigError, DeviceError, DeviceLost
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.tools.base import Device, Executed, Observation
from pixelpilot.tools.robot_plan import (
    Vec3,
    Waypoint,
    Workspace,
    in_tray,
    plan_move,
    plan_pick,
    plan_place,
    resting_on,
)
from pixelpilot.tools.robot_scenes import (
    COLOURS,
    CUBE_HALF,
    CYLINDER,
    SCENES,
    TRAY_FLOOR_Z,
    TRAY_INNER_HALF,
    TRAY_RIM,
    TRAY_SCALE,
    TRAY_XY,
    Thing,
    default_camera,
    scene_objects,
)

__all__ = ["SCENES", "TRAY_FLOOR_Z", "TRAY_XY", "RobotDevice", "Thing", "scene_objects"]

HOME = (0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785)
ARM, FINGERS, GRASP_LINK = tuple(range(7)), (9, 10), 11
ARM_FORCES = (87.0,) * 4 + (12.0,) * 3
ARM_MAX_VELOCITY = 2.0  # rad/s, under the Panda's limits (2.175 and 2.61)
LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671)
UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671)
JOINT_TOL = 2e-3  # rad: a move has arrived
MOVE_STEPS, GRIP_STEPS, SETTLE_STEPS = 480, 150, 60
GRIP_FORCE, FINGER_OPEN = 40.0, 0.04


class RobotDevice(Device):
    """A simulated Franka Panda: observe = camera image; pick/place/move at image pixels."""

    kind = "robot"
    supported = ROBOT_KINDS

    def __init__(
        self,
        scene: str = "tray",
        *,
        width: int = 640,
        height: int = 480,
        seed: int = 0,
        gui: bool = False,
        name: str | None = None,
    ) -> None:
        self.things, self.has_tray = scene_objects(scene, seed)
        if width < 16 or height < 16:
            raise ConfigError(f"camera image {width}x{height} is too small (at least 16x16)")
        self.scene, self.seed, self.gui = scene, seed, gui
        self.camera = default_camera(width, height)
        self.workspace = Workspace()
        self.name = name or f"robot:{scene}"
        self._p: Any = None
        self._cid = -1
        self._bodies: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._panda = self._tray = -1
        self._depth: np.ndarray | None = None
        self._seg: np.ndarray | None = None
        self._steps = 0
        self._gripper: Literal["open", "close"] = "open"

    @property
    def geometry(self) -> ScreenGeometry:
        return ScreenGeometry(self.camera.width, self.camera.height)

    @property
    def physics_client(self) -> int:
        """The pybullet client id (``pybullet.disconnect(it)`` simulates losing the server)."""
        return self._cid

    # -- lifecycle -------------------------------------------------------------------------------
    def _open(self) -> None:
        import pybullet

        if self.gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise ConfigError("RobotDevice(gui=True) needs an X display: set DISPLAY")
        self._p = p = pybullet
        self._cid = p.connect(p.GUI if self.gui else p.DIRECT)
        if self._cid < 0:
            raise DeviceError("pybullet could not start a physics server")
        try:
            self._build()
        except BaseException:
            p.disconnect(physicsClientId=self._cid)
            self._cid = -1
            raise

    def _build(self) -> None:
        """Load the floor, table, arm, tray and objects, and let them settle at home."""
        import pybullet_data

        p, kw = self._p, {"physicsClientId": self._cid}
        self._steps, self._gripper, self._depth, self._seg = 0, "open", None, None
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), **kw)
        p.setGravity(0, 0, -9.81, **kw)
        floor = p.loadURDF("plane.urdf", [0, 0, -0.625], **kw)
        table = p.loadURDF("table/table.urdf", [0.5, 0, -0.625], useFixedBase=True, **kw)
        self._panda = p.loadURDF("franka_panda/panda.urdf", [0, 0, 0], useFixedBase=True, **kw)
        self._names = {floor: "floor", table: "table", self._panda: "robot"}
        for f in FINGERS:
            p.changeDynamics(self._panda, f, lateralFriction=1.5, **kw)
        gear = p.createConstraint(self._panda, 9, self._panda, 10, p.JOINT_GEAR, [1, 0, 0],
                                  [0, 0, 0], [0, 0, 0], **kw)  # fmt: skip
        p.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, **kw)
        if self.has_tray:
            self._tray = p.loadURDF("tray/traybox.urdf", [*TRAY_XY, 0], globalScaling=TRAY_SCALE,
                                    useFixedBase=True, **kw)  # fmt: skip
            self._names[self._tray] = "tray"
        for t in self.things:
            self._bodies[t.name] = body = self._spawn(t)
            self._names[body] = t.name
        for j, q in zip(ARM, HOME, strict=True):
            p.resetJointState(self._panda, j, q, **kw)
        for f in FINGERS:
            p.resetJointState(self._panda, f, FINGER_OPEN, **kw)
        self._hold_arm(HOME)
        self._set_fingers(FINGER_OPEN)
        self._step(SETTLE_STEPS * 2)

    def _spawn(self, t: Thing) -> int:
        p, kw = self._p, {"physicsClientId": self._cid}
        rgba = COLOURS[t.colour]
        if t.shape == "cube":
            half = [CUBE_HALF] * 3
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, **kw)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, **kw)
            mass = 0.1
        else:
            r, h = CYLINDER
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=r, height=2 * h, **kw)
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=r, length=2 * h, rgbaColor=rgba, **kw)
            mass = 0.08
        orn = p.getQuaternionFromEuler([0, 0, t.yaw])
        body = p.createMultiBody(mass, col, vis, [*t.xy, t.half_height + 0.001], orn, **kw)
        p.changeDynamics(body, -1, lateralFriction=1.0, spinningFriction=0.001,
                         rollingFriction=0.0001, **kw)  # fmt: skip
        return body

    def _close(self) -> None:
        p, cid = self._p, self._cid
        self._cid, self._depth, self._seg = -1, None, None
        if p is not None and cid >= 0 and p.isConnected(physicsClientId=cid):
            p.disconnect(physicsClientId=cid)

    @contextlib.contextmanager
    def _alive(self) -> Iterator[None]:
        """Map a vanished physics server to DeviceLost (pybullet only says 'Not connected')."""
        if not self._p.isConnected(physicsClientId=self._cid):
            raise DeviceLost(self._lost_message())
        try:
            yield
        except self._p.error as exc:
            if not self._p.isConnected(physicsClientId=self._cid):
                raise DeviceLost(self._lost_message()) from exc
            raise

    def _lost_message(self) -> str:
        return (f"{self.name}: the pybullet physics server (client {self._cid}) is gone; "
                "open the device again")  # fmt: skip

    # -- observe ---------------------------------------------------------------------------------
    def _render(self) -> np.ndarray:
        cam = self.camera
        w, h, rgba, depth, seg = self._p.getCameraImage(
            cam.width, cam.height, cam.view, cam.projection, shadow=0,
            lightDirection=[1.0, -0.6, 2.0], renderer=self._p.ER_TINY_RENDERER,
            physicsClientId=self._cid,
        )  # fmt: skip
        self._depth = np.asarray(depth, dtype=np.float64).reshape(h, w)
        self._seg = np.asarray(seg, dtype=np.int64).reshape(h, w)
        return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)

    def _observe(self) -> Observation:
        with self._alive():
            rgba = self._render()
        image = Image.fromarray(rgba[:, :, :3], "RGB")
        return Observation(image=image, geometry=self.geometry, extra={"sim_steps": self._steps})

    # -- execute ---------------------------------------------------------------------------------
    def _execute(self, action: Action) -> Executed:
        with self._alive():
            commands: list[list[Any]] = []
            note = ""
            match action:
                case Pick():
                    if (held := self._holding()) is not None:
                        raise ActionRejected(
                            f"pick: the gripper already holds {held}; place it first"
                        )
                    surface, what = self._target(action.point, "pick", commands)
                    self._run(plan_pick(surface, self.workspace, what), commands)
                    held = self._holding()
                    note = f"grasped {held}" if held else "grasped nothing"
                case Place():
                    held = self._holding()
                    if held is None:
                        raise ActionRejected(
                            "place: the gripper holds nothing; pick an object first"
                        )
                    surface, what = self._target(action.point, "place", commands)
                    if commands[-1][1]["hit"] == held:
                        raise ActionRejected(f"{what}: that is the {held} in the gripper; "
                                             "point where it should go")  # fmt: skip
                    offset = self._ee()[2] - self._aabb(self._bodies[held])[0][2]
                    self._run(plan_place(surface, offset, self.workspace, what), commands)
                    self._step(SETTLE_STEPS)
                    note = f"released {held}"
                case MoveEffector():
                    surface, what = self._target(action.point, "move_effector", commands)
                    self._run(plan_move(surface, action.height, self.workspace, what), commands)
                case Gripper():
                    commands.append(self._grip(action.state))
                    if action.state == "open":
                        self._step(SETTLE_STEPS)
                    held = self._holding()
                    note = f"holding {held}" if held else "holding nothing"
                case Home():
                    steps, err = self._drive(HOME)
                    commands.append(["home", {"joints": list(HOME), "steps": steps,
                                              "joint_error": round(err, 5)}])  # fmt: skip
                case (
                    Click() | Move() | Drag() | Scroll() | TypeText() | Hotkey() | Wait()
                    | Tap() | LongPress() | Swipe() | SystemButton() | OpenApp() | Finish()
                    | AskUser()
                ):  # guarded by Device.execute against ``supported``  # fmt: skip
                    raise DeviceError(f"{self.name}: no handler for {action.kind!r}")
                case _:
                    assert_never(action)
            self._depth = self._seg = None  # the scene moved: the next pixel needs a new frame
        return Executed(action=action, commands=commands, note=note)

    def _target(self, point: Any, kind: str, commands: list[list[Any]]) -> tuple[Vec3, str]:
        """The world point under an image pixel (from the depth buffer) and how to name the
        request in a refusal; ActionRejected when the pixel shows the arm or nothing."""
        x, y = int(point.x), int(point.y)
        what = f"{kind} at pixel ({x}, {y})"
        depth, hit = self._pixel(x, y)
        if hit == "robot":
            raise ActionRejected(f"{what}: that is the robot arm itself; "
                                 "point at an object or a place on the table")  # fmt: skip
        if hit == "nothing" and depth >= 1.0:
            raise ActionRejected(f"{what}: nothing is there (background); point at the table")
        world = self.camera.pixel_to_world(x, y, depth)
        commands.append(["target", {"pixel": [x, y], "depth": round(depth, 6), "hit": hit,
                                    "world_mm": _mm(world)}])  # fmt: skip
        return world, what

    def _pixel(self, x: int, y: int) -> tuple[float, str]:
        """(depth-buffer value, name of the body seen) at pixel (x, y) of the current frame."""
        if self._depth is None or self._seg is None:
            self._render()
        assert self._depth is not None and self._seg is not None
        return float(self._depth[y, x]), self._names.get(int(self._seg[y, x]), "nothing")

    def look(self, x: int, y: int) -> tuple[str, Vec3]:
        """What the camera sees at pixel (x, y) now: the body's name ('red_cube', 'tray',
        'table', 'robot', 'floor', 'nothing') and the world point from the depth buffer."""
        self._require_connected()
        if not self.geometry.contains(x, y):
            raise ConfigError(f"pixel ({x}, {y}) is outside the {self.camera.width}x"
                              f"{self.camera.height} image")  # fmt: skip
        with self._errors("look"), self._alive():
            depth, hit = self._pixel(x, y)
        return hit, self.camera.pixel_to_world(x, y, depth)

    def _run(self, plan: Sequence[Waypoint], commands: list[list[Any]]) -> None:
        for w in plan:
            q = self._ik(w.position)
            steps, _ = self._drive(q)
            reached = self._ee()
            commands.append(["move", {
                "waypoint": w.name, "to_mm": _mm(w.position), "joints": [round(v, 4) for v in q],
                "steps": steps, "error_mm": round(1000 * math.dist(reached, w.position), 2),
            }])  # fmt: skip
            if w.gripper is not None:
                commands.append(self._grip(w.gripper))

    # -- physics ---------------------------------------------------------------------------------
    def _kw(self) -> dict[str, int]:
        return {"physicsClientId": self._cid}

    def _step(self, n: int) -> None:
        for _ in range(n):
            self._p.stepSimulation(physicsClientId=self._cid)
        self._steps += n

    def _ee(self) -> Vec3:
        s = self._p.getLinkState(
            self._panda, GRASP_LINK, computeForwardKinematics=True, **self._kw()
        )
        return tuple(s[4])  # type: ignore[return-value]

    def _aabb(self, body: int) -> tuple[Vec3, Vec3]:
        lo, hi = self._p.getAABB(body, **self._kw())
        return tuple(lo), tuple(hi)  # type: ignore[return-value]

    def _ik(self, position: Vec3) -> tuple[float, ...]:
        p = self._p
        down = p.getQuaternionFromEuler([math.pi, 0.0, 0.0])
        ranges = [u - lo for lo, u in zip(LOWER, UPPER, strict=True)]
        q = p.calculateInverseKinematics(
            self._panda, GRASP_LINK, position, down, lowerLimits=list(LOWER),
            upperLimits=list(UPPER), jointRanges=ranges, restPoses=list(HOME),
            maxNumIterations=100, residualThreshold=1e-4, **self._kw(),
        )  # fmt: skip
        return tuple(q[:7])

    def _hold_arm(self, q: Sequence[float]) -> None:
        for j, target, force in zip(ARM, q, ARM_FORCES, strict=True):
            self._p.setJointMotorControl2(
                self._panda, j, self._p.POSITION_CONTROL, targetPosition=target, force=force,
                maxVelocity=ARM_MAX_VELOCITY, **self._kw(),
            )  # fmt: skip

    def _joints(self, joints: Sequence[int]) -> list[float]:
        return [s[0] for s in self._p.getJointStates(self._panda, joints, **self._kw())]

    def _drive(self, q: Sequence[float]) -> tuple[int, float]:
        """Drive the arm to joint targets ``q``: (steps taken, largest joint error left)."""
        self._hold_arm(q)
        steps, err = 0, math.inf
        while steps < MOVE_STEPS:
            self._step(8)
            steps += 8
            err = max(abs(a - b) for a, b in zip(self._joints(ARM), q, strict=True))
            if err < JOINT_TOL:
                break
        return steps, err

    def _set_fingers(self, each: float) -> None:
        for f in FINGERS:
            self._p.setJointMotorControl2(self._panda, f, self._p.POSITION_CONTROL,
                                          targetPosition=each, force=GRIP_FORCE, **self._kw())  # fmt: skip

    def _grip(self, state: Literal["open", "close"]) -> list[Any]:
        """Open or close the fingers until they stop moving; the command record."""
        self._set_fingers(FINGER_OPEN if state == "open" else 0.0)
        steps, last = 0, self._joints(FINGERS)
        while steps < GRIP_STEPS:
            self._step(10)
            steps += 10
            now = self._joints(FINGERS)
            if steps >= 30 and max(abs(a - b) for a, b in zip(now, last, strict=True)) < 1e-4:
                break
            last = now
        self._gripper = state
        width = 1000 * sum(self._joints(FINGERS))
        return ["gripper", {"state": state, "width_mm": round(width, 1) + 0.0, "steps": steps,
                            "holding": self._holding()}]  # fmt: skip

    def _holding(self) -> str | None:
        """The object both fingers touch, if any."""
        p, kw = self._p, self._kw()
        for name, body in self._bodies.items():
            if all(p.getContactPoints(self._panda, body, f, -1, **kw) for f in FINGERS):
                return name
        return None

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The simulator's state for checks: positions in mm, tray contents, stacks, grip."""
        self._require_connected()
        with self._errors("state"), self._alive():
            return self._state()

    def _state(self) -> dict[str, Any]:
        p, kw = self._p, self._kw()
        held = self._holding()
        boxes = {n: self._aabb(b) for n, b in self._bodies.items()}
        tray = (*TRAY_XY, 0.0)
        objects: dict[str, Any] = {}
        for t in self.things:
            pos, orn = p.getBasePositionAndOrientation(self._bodies[t.name], **kw)
            lo, hi = boxes[t.name]
            on = next((o for o in boxes if o != t.name and resting_on(lo, hi, *boxes[o])
                       and p.getContactPoints(self._bodies[t.name], self._bodies[o], **kw)),
                      None)  # fmt: skip
            objects[t.name] = {
                "shape": t.shape, "colour": t.colour, "position_mm": _mm(pos),
                "yaw_deg": round(math.degrees(p.getEulerFromQuaternion(orn)[2]), 1),
                "in_tray": self.has_tray and held != t.name
                and in_tray(pos, tray, TRAY_INNER_HALF, TRAY_RIM),
                "on": on, "held": held == t.name, "on_table": lo[2] < 0.005,
            }  # fmt: skip
        return {
            "scene": self.scene,
            "seed": self.seed,
            "objects": objects,
            "in_tray": [n for n, o in objects.items() if o["in_tray"]],
            "stacked": [[n, o["on"]] for n, o in objects.items() if o["on"]],
            "holding": held,
            "gripper": self._gripper,
            "gripper_width_mm": round(1000 * sum(self._joints(FINGERS)), 1) + 0.0,
            "effector_mm": _mm(self._ee()),
            "tray_mm": _mm(tray) if self.has_tray else None,
            "sim_steps": self._steps,
        }

    def locate(self, name: str) -> tuple[int, int]:
        """The image pixel of an object's top-face centre (for writing scenarios and tests)."""
        self._require_connected()
        if name not in self._bodies:
            raise ConfigError(
                f"no object {name!r} in scene {self.scene!r}: {', '.join(self._bodies)}"
            )
        with self._alive():
            pos, _ = self._p.getBasePositionAndOrientation(self._bodies[name], **self._kw())
            top = self._aabb(self._bodies[name])[1][2]
        x, y, _ = self.camera.world_to_pixel((pos[0], pos[1], top))
        return math.floor(x + 0.5), math.floor(y + 0.5)


def _mm(v: Sequence[float]) -> list[float]:
    return [round(1000 * c, 1) + 0.0 for c in v]  # + 0.0: no -0.0
