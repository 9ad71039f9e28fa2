"""The MuJoCo renderer: cameras that frame named bodies, shadows that stay with a running robot, models untouched."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from metarl.envs import locomotion, make_family
from metarl.envs.grasping.physics import CAMERA
from metarl.envs.grasping.scene import compile_scene
from metarl.envs.mujoco_batch import (
    MUJOCO_QUALITY,
    BodyFraming,
    OffscreenRenderer,
    RenderQuality,
    tracking_camera,
)

pytestmark = pytest.mark.render


def _grasp_state(lift: float = 0.0) -> tuple[mujoco.MjModel, mujoco.MjData]:
    family = make_family("GraspObject")
    model = compile_scene(family.test_tasks()[0].object)  # type: ignore[attr-defined]
    data = mujoco.MjData(model)
    data.qpos[model.jnt_qposadr[model.joint("hand_z").id]] = lift
    mujoco.mj_forward(model, data)
    return model, data


def test_framing_looks_at_the_hand_and_the_object_from_close() -> None:
    model, data = _grasp_state()
    camera = CAMERA.camera(model, data)
    hand, obj = data.xpos[model.body("hand").id], data.xpos[model.body("object").id]
    low, high = np.minimum(hand, obj) - 0.1, np.maximum(hand, obj) + 0.1
    assert np.all(low <= camera.lookat) and np.all(camera.lookat <= high)
    assert 0.2 < camera.distance < 1.0  # metres: the scene's table is 3 m wide
    raised = CAMERA.camera(*_grasp_state(lift=0.2))  # the hand far above the object: the view widens
    assert raised.distance > camera.distance


def test_framing_ignores_invisible_geoms_and_names_a_missing_body() -> None:
    model, data = _grasp_state()
    geoms = CAMERA.geoms(model)
    assert len(geoms) and (model.geom_rgba[geoms, 3] > 0).all()
    with pytest.raises(ValueError, match=r"cannot frame body 'gripper'.*'hand'"):
        BodyFraming(("gripper",)).camera(model, data)


def test_render_contexts_leave_the_model_as_it_was() -> None:
    model, data = _grasp_state()
    before = (
        model.vis.global_.offwidth,
        model.vis.global_.offheight,
        model.vis.quality.shadowsize,
        model.vis.quality.offsamples,
        model.vis.map.shadowclip,
    )
    renderer = OffscreenRenderer(96, 64)
    frame = renderer.render(model, data, CAMERA.camera(model, data))
    renderer.close()
    assert frame.shape == (64, 96, 3) and frame.std() > 0
    after = (
        model.vis.global_.offwidth,
        model.vis.global_.offheight,
        model.vis.quality.shadowsize,
        model.vis.quality.offsamples,
        model.vis.map.shadowclip,
    )
    assert after == before


def test_shadows_are_on_by_default() -> None:
    model, data = _grasp_state(lift=0.05)
    camera = CAMERA.camera(model, data)
    frames = {}
    for name, quality in (("shadows", RenderQuality()), ("none", RenderQuality(shadow_lights=0))):
        renderer = OffscreenRenderer(128, 128, quality=quality)
        frames[name] = renderer.render(model, data, camera).astype(int)
        renderer.close()
    darker = frames["none"].sum(-1) - frames["shadows"].sum(-1)
    assert (darker > 60).sum() > 100  # a shadow: a patch of pixels much darker than without


def test_a_robot_that_runs_20_m_keeps_its_shadow() -> None:
    """MuJoCo's own shadow map of a directional light covers 8 m around the light; ours follows the camera.

    The floor's checkers repeat every 4/3 m, so at x = 20 m the tracked view is the one at x = 0.
    """
    model = locomotion.robot_model(locomotion.HALF_CHEETAH)

    def difference(quality: RenderQuality) -> float:
        renderer = OffscreenRenderer(160, 120, quality=quality)
        frames = []
        for x in (0.0, 20.0):
            data = mujoco.MjData(model)
            data.qpos[0] = x
            mujoco.mj_forward(model, data)
            frames.append(renderer.render(model, data, tracking_camera(1, 3.5)).astype(int))
        renderer.close()
        return float(np.abs(frames[0] - frames[1])[60:].mean())  # the lower half: the robot and the floor

    assert difference(RenderQuality()) < 0.3
    assert difference(MUJOCO_QUALITY) > 1.0  # there, the shadow is gone at 20 m
