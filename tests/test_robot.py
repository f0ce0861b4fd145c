"""The robot device on a real pybullet simulation: camera geometry, pixels -> world through the
depth buffer, pick-and-place accuracy, workspace refusals, gripper and home, a vanishing physics
server, and the shipped robot scenarios end to end through the real agent loop."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pybullet
import pytest

from pixelpilot.agent.actions import (
    ROBOT_KINDS,
    Click,
    Gripper,
    Home,
    MoveEffector,
    Pick,
    Place,
    Point,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import (
    ActionRejected,
    ConfigError,
    DeviceLost,
    ParseError,
    PointOutOfBounds,
    UnsupportedAction,
)
from pixelpilot.agent.geometry import HUB_PIXELS, from_screen
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.scenarios.runner import run_scenario
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario
from pixelpilot.tools.robot import TRAY_FLOOR_Z, TRAY_XY, RobotDevice, scene_objects
from pixelpilot.tools.robot_plan import projection_matrix, view_matrix
from pixelpilot.vlm.scripted import ScriptedModel

W, H = 320, 240


def px(xy: tuple[float, float]) -> Point:
    return Point(x=xy[0], y=xy[1], space="screen_px")


@pytest.fixture
def tray() -> Iterator[RobotDevice]:
    with RobotDevice("tray", width=W, height=H) as dev:
        yield dev


def pixel_of(dev: RobotDevice, world: tuple[float, float, float]) -> tuple[int, int]:
    x, y, _ = dev.camera.world_to_pixel(world)
    return round(x), round(y)


def xy_error_mm(a: list[float], b: tuple[float, ...]) -> float:
    return math.hypot(a[0] - 1000 * b[0], a[1] - 1000 * b[1])


def test_camera_matrices_are_pybullets() -> None:
    eye, target, up = (1.0, 0.06, 0.75), (0.5, 0.06, 0.0), (0.0, 0.0, 1.0)
    assert view_matrix(eye, target, up) == pytest.approx(
        pybullet.computeViewMatrix(eye, target, up), abs=1e-6
    )
    assert projection_matrix(45.0, 4 / 3, 0.1, 3.0) == pytest.approx(
        pybullet.computeProjectionMatrixFOV(45.0, 4 / 3, 0.1, 3.0), abs=1e-6
    )


def test_observe_is_the_camera_image(tray: RobotDevice) -> None:
    obs = tray.observe()
    assert obs.image.size == (W, H) and obs.image.mode == "RGB"
    assert (obs.geometry.width, obs.geometry.height, obs.geometry.scale) == (W, H, 1.0)
    assert obs.seconds > 0
    r, g, b = obs.image.getpixel(tray.locate("red_cube"))
    assert r > 120 and g < 80 and b < 80, (r, g, b)
    r, g, b = obs.image.getpixel(tray.locate("blue_cube"))
    assert b > 120 and r < 80, (r, g, b)


def test_depth_buffer_pixels_land_on_the_objects() -> None:
    with RobotDevice("objects", width=W, height=H, seed=3) as dev:
        state = dev.state()
        for name, obj in state["objects"].items():
            hit, world = dev.look(*dev.locate(name))
            assert hit == name
            top = obj["position_mm"][2] + (20.0 if obj["shape"] == "cube" else 25.0)
            assert xy_error_mm(obj["position_mm"], world) < 5, (name, world)
            assert abs(1000 * world[2] - top) < 3, (name, world)


def test_pick_and_place_lands_within_a_few_mm(tray: RobotDevice) -> None:
    tray.observe()
    picked = tray.execute(Pick(point=px(tray.locate("red_cube"))))
    assert picked.note == "grasped red_cube"
    kinds = [c[0] for c in picked.commands]
    assert kinds == ["target", "move", "gripper", "move", "gripper", "move", "move"]
    assert picked.commands[0][1]["hit"] == "red_cube"
    assert [c[1]["waypoint"] for c in picked.commands if c[0] == "move"] == [
        "above", "grasp", "lift", "carry"]  # fmt: skip
    assert picked.commands[4][1]["holding"] == "red_cube"
    assert all(c[1]["error_mm"] < 3 for c in picked.commands if c[0] == "move")
    state = tray.state()
    assert state["holding"] == "red_cube" and state["objects"]["red_cube"]["held"]
    assert state["objects"]["red_cube"]["position_mm"][2] > 300  # lifted and carried

    target = pixel_of(tray, (0.5, 0.0, 0.0))
    _, aimed = tray.look(*target)
    placed = tray.execute(Place(point=px(target)))
    assert placed.note == "released red_cube"
    state = tray.state()
    cube = state["objects"]["red_cube"]
    assert state["holding"] is None and cube["on_table"] and not cube["in_tray"]
    assert xy_error_mm(cube["position_mm"], aimed) < 5, (cube, aimed)
    assert xy_error_mm(cube["position_mm"], (0.5, 0.0)) < 8


def test_into_the_tray_and_onto_a_block() -> None:
    with RobotDevice("tray", width=W, height=H, seed=5) as dev:
        dev.execute(Pick(point=px(dev.locate("green_cylinder"))))
        dev.execute(Place(point=px(pixel_of(dev, (*TRAY_XY, TRAY_FLOOR_Z)))))
        assert dev.state()["in_tray"] == ["green_cylinder"]
    with RobotDevice("stack", width=W, height=H, seed=2) as dev:
        dev.execute(Pick(point=px(dev.locate("blue_cube"))))
        dev.execute(Place(point=px(dev.locate("red_cube"))))
        state = dev.state()
        assert state["stacked"] == [["blue_cube", "red_cube"]]
        assert state["objects"]["blue_cube"]["position_mm"][2] == pytest.approx(60, abs=2)


def _robot_pixel(dev: RobotDevice) -> tuple[int, int]:
    for y in range(0, H // 3, 2):
        for x in range(0, W, 2):
            if dev.look(x, y)[0] == "robot":
                return x, y
    raise AssertionError("the arm is not in view")


def test_points_the_arm_cannot_reach_are_refused(tray: RobotDevice) -> None:
    tray.observe()
    before = tray.state()
    far = (W // 2, H - 3)  # the table's near edge, in front of everything
    assert tray.look(*far)[0] == "table"
    with pytest.raises(ActionRejected, match=rf"^pick at pixel \({far[0]}, {far[1]}\): the "
                       r"gripper would go to .* out of the arm's reach"):  # fmt: skip
        tray.execute(Pick(point=px(far)))
    assert tray.look(2, 2)[0] == "floor"
    with pytest.raises(ActionRejected, match=r"off the table \(the floor"):
        tray.execute(MoveEffector(point=px((2, 2)), height=0.1))
    with pytest.raises(ActionRejected, match="the robot arm itself"):
        tray.execute(Pick(point=px(_robot_pixel(tray))))
    with pytest.raises(ActionRejected, match="holds nothing; pick an object first"):
        tray.execute(Place(point=px(tray.locate("blue_cube"))))
    after = tray.state()
    assert after["sim_steps"] == before["sim_steps"]  # nothing moved
    assert after["effector_mm"] == before["effector_mm"]

    tray.execute(Pick(point=px(tray.locate("red_cube"))))
    with pytest.raises(ActionRejected, match="already holds red_cube; place it first"):
        tray.execute(Pick(point=px(tray.locate("blue_cube"))))
    assert tray.state()["objects"]["red_cube"]["position_mm"][2] > 300  # carried out of view
    tray.execute(MoveEffector(point=px(pixel_of(tray, (0.5, -0.1, 0.0))), height=0.1))
    held = tray.locate("red_cube")  # now in view, in the gripper
    assert tray.look(*held)[0] == "red_cube"
    with pytest.raises(ActionRejected, match="that is the red_cube in the gripper"):
        tray.execute(Place(point=px(held)))


def test_unsupported_and_off_image(tray: RobotDevice) -> None:
    assert tray.supported == ROBOT_KINDS and tray.kind == "robot"
    with pytest.raises(UnsupportedAction, match="cannot do 'click'"):
        tray.execute(Click(point=px((10, 10))))
    with pytest.raises(PointOutOfBounds, match=f"{W}x{H}"):
        tray.execute(Pick(point=px((W, 10))))


def test_gripper_move_effector_and_home(tray: RobotDevice) -> None:
    home = tray.state()["effector_mm"]
    cube = tray.state()["objects"]["red_cube"]["position_mm"]
    done = tray.execute(MoveEffector(point=px(tray.locate("red_cube")), height=0.1))
    assert [c[0] for c in done.commands] == ["target", "move"]
    ee = tray.state()["effector_mm"]
    assert xy_error_mm(ee, (cube[0] / 1000, cube[1] / 1000)) < 5
    assert ee[2] == pytest.approx(cube[2] + 20 + 100, abs=4)

    closed = tray.execute(Gripper(state="close"))
    assert closed.commands[0][1]["width_mm"] < 1 and closed.note == "holding nothing"
    assert tray.state()["gripper"] == "close"
    opened = tray.execute(Gripper(state="open"))
    assert opened.commands[0][1]["width_mm"] == pytest.approx(80, abs=1)

    back = tray.execute(Home())
    assert back.commands[0][0] == "home" and back.commands[0][1]["joint_error"] < 0.01
    assert tray.state()["effector_mm"] == pytest.approx(home, abs=3)


def test_pick_on_empty_table_grasps_nothing(tray: RobotDevice) -> None:
    done = tray.execute(Pick(point=px(pixel_of(tray, (0.5, 0.0, 0.0)))))
    assert done.commands[0][1]["hit"] == "table"
    assert done.note == "grasped nothing"
    state = tray.state()
    assert state["holding"] is None and state["gripper_width_mm"] < 1


def test_scenes_are_deterministic_per_seed() -> None:
    assert scene_objects("objects", 4) == scene_objects("objects", 4)
    assert scene_objects("objects", 4) != scene_objects("objects", 5)
    names = {t.name for t in scene_objects("objects", 0)[0]}
    assert names == {"red_cube", "blue_cube", "green_cylinder", "yellow_cube", "purple_cylinder"}
    states = []
    for _ in range(2):
        with RobotDevice("stack", width=32, height=24, seed=9) as dev:
            states.append(dev.state()["objects"])
    assert states[0] == states[1]
    with pytest.raises(ConfigError, match="unknown robot scene 'kitchen'; use one of: tray"):
        RobotDevice("kitchen")


def test_disconnected_physics_server_is_device_lost(tray: RobotDevice) -> None:
    pybullet.disconnect(tray.physics_client)
    for call in (tray.observe, tray.state, lambda: tray.execute(Home()),
                 lambda: tray.look(1, 1)):  # fmt: skip
        with pytest.raises(DeviceLost, match="pybullet physics server .* is gone"):
            call()
    tray.close()  # closing a lost device is quiet


def _norm(dev: RobotDevice, xy: tuple[int, int]) -> list[float]:
    p = from_screen(xy[0], xy[1], "norm1000", dev.geometry)
    return [p.x, p.y]


def test_agent_run_ends_with_error_and_the_trajectory_when_the_server_goes(
    tray: RobotDevice, tmp_path: Path
) -> None:
    fmt = '✿FUNCTION✿: {}\n✿ARGS✿: {{"point": [{:g}, {:g}]}}'
    script = [
        fmt.format("pick", *_norm(tray, tray.locate("red_cube"))),
        fmt.format("place", *_norm(tray, pixel_of(tray, (*TRAY_XY, TRAY_FLOOR_Z)))),
        "✿FUNCTION✿: finish\n✿ARGS✿: {}",
    ]

    def vanish(step: Any) -> None:
        if step.index == 1:
            pybullet.disconnect(tray.physics_client)

    result = Agent(
        model=ScriptedModel(script), device=tray, dialect="qwen2vl",
        budgets=Budgets(max_steps=5, max_seconds=60),
        recorder=DirectoryRecorder(tmp_path / "run"), on_step=vanish,
    ).run("Put the red cube in the tray.")  # fmt: skip
    assert result.status == "error" and "physics server" in result.reason
    traj = load_trajectory(tmp_path / "run")
    assert traj.status == "error" and [s.index for s in traj.steps] == [1, 2]
    assert traj.steps[0].executed is not None
    assert traj.steps[0].executed.note == "grasped red_cube"
    assert traj.steps[1].error and "gone" in traj.steps[1].error
    assert (tmp_path / "run" / "screens" / "0001.png").is_file()


def test_uitars_has_no_robot_actions() -> None:
    """UI-TARS's action space has no pick/place: on a robot it offers wait/finished/call_user
    only, and a pick gets a clear error for the model (the scenarios use other dialects)."""
    ctx = StepContext("robot", ROBOT_KINDS, RobotDevice("tray").geometry, HUB_PIXELS.resize(W, H))
    with pytest.raises(ParseError, match="'pick' is not an action; use one of: wait, finished, call_user"):
        get_dialect("uitars").parse(
            "Thought: pick it\nAction: pick(start_box='<|box_start|>(500,500)<|box_end|>')", ctx
        )


ROBOT_SCENARIOS = discover(BUILTIN_DIR / "robot")


def test_robot_scenarios_are_shipped() -> None:
    names = {p.stem for p in ROBOT_SCENARIOS}
    assert {"red_cube_in_tray", "stack_blocks", "pick_named_object"} <= names
    for path in ROBOT_SCENARIOS:
        s = load_scenario(path)
        assert s.target.kind == "robot" and len(s.scripts) >= 2 and s.checks


@pytest.mark.parametrize("path", ROBOT_SCENARIOS, ids=lambda p: p.stem)
def test_robot_scenario_end_to_end(path: Path) -> None:
    outcomes = run_scenario(load_scenario(path))
    assert outcomes
    for o in outcomes:
        assert o.passed, (o.dialect, o.failures, o.result.reason)
        assert o.passes
