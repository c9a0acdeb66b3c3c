"""The Acclaim reader and forward kinematics, on hand-made files and on the real CMU files."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.pose.acclaim import euler_xyz, forward_kinematics, read_amc, read_asf
from helpers.pose.skeleton import BONES, LIMBS, bone_lengths, hop_distance, to_h36m

ASF = """:version 1.10\r
:name toy\r
:units\r
  length 0.45\r
  angle deg\r
:root\r
   order TX TY TZ RX RY RZ\r
   axis XYZ\r
   position 0 0 0\r
   orientation 0 0 0\r
:bonedata\r
  begin\r
     id 1\r
     name a\r
     direction 1 0 0\r
     length 2\r
     axis 0 0 0 XYZ\r
    dof rz\r
  end\r
  begin\r
     id 2\r
     name b\r
     direction 1 0 0\r
     length 1\r
     axis 0 0 0 XYZ\r
    dof rz\r
  end\r
:hierarchy\r
  begin\r
    root a\r
    a b\r
  end\r
"""
AMC = ":FULLY-SPECIFIED\r\n:DEGREES\r\n1\r\nroot 1 2 3 0 0 0\r\na 90\r\nb 0\r\n2\r\nroot 0 0 0 0 0 0\r\na 0\r\nb 90\r\n"


def test_forward_kinematics_on_a_hand_worked_chain(tmp_path) -> None:
    (tmp_path / "t.asf").write_bytes(ASF.encode())
    (tmp_path / "t.amc").write_bytes(AMC.encode())
    skel, motion = read_asf(tmp_path / "t.asf"), read_amc(tmp_path / "t.amc")
    assert skel.mm_per_unit == pytest.approx(25.4 / 0.45)
    p = {k: v / skel.mm_per_unit for k, v in forward_kinematics(skel, motion).items()}
    # frame 1: root at (1,2,3); a turned 90° about z points along +y (length 2); b follows it
    np.testing.assert_allclose(p["root"][0], [1, 2, 3])
    np.testing.assert_allclose(p["a"][0], [1, 4, 3], atol=1e-9)
    np.testing.assert_allclose(p["b"][0], [1, 5, 3], atol=1e-9)
    # frame 2: a straight along +x, b turned 90° about z
    np.testing.assert_allclose(p["a"][1], [2, 0, 0], atol=1e-9)
    np.testing.assert_allclose(p["b"][1], [2, 1, 0], atol=1e-9)


def test_euler_order_is_z_y_x() -> None:
    r = euler_xyz(np.array([90.0, 0.0, 90.0]))  # R_z(90) R_x(90)
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_bad_files_say_why(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no .asf"):
        read_asf(tmp_path / "missing.asf")
    (tmp_path / "x.asf").write_text("hello\n")
    with pytest.raises(ValueError, match="not an Acclaim .asf"):
        read_asf(tmp_path / "x.asf")
    (tmp_path / "x.amc").write_text(":DEGREES\nroot 1 2 3\n")
    with pytest.raises(ValueError, match="before the first frame"):
        read_amc(tmp_path / "x.amc")


def test_real_cmu_motion(real_data) -> None:
    folder = real_data / "cmu_mocap" / "subjects" / "02"
    assert b"\r\n" in (folder / "02_03.amc").read_bytes()[:200]  # the real files are CRLF
    skel, motion = read_asf(folder / "02.asf"), read_amc(folder / "02_03.amc")
    assert len(skel.bones) == 30 and len(motion) > 100
    points = forward_kinematics(skel, motion)
    # the first frame's root line, in mm
    first = (folder / "02_03.amc").read_text().splitlines()
    root = [float(v) for v in next(line for line in first if line.startswith("root")).split()[1:4]]
    np.testing.assert_allclose(points["root"][0], np.array(root) * 25.4 / 0.45)
    for name, bone in skel.bones.items():  # every CMU bone keeps its length in every frame
        parent = skel.parents()[name]
        length = np.linalg.norm(points[name] - points[parent], axis=-1)
        np.testing.assert_allclose(length, bone.length * np.linalg.norm(bone.direction) * skel.mm_per_unit, rtol=1e-9)
    joints = to_h36m(points)
    limbs = bone_lengths(joints)[:, [BONES.index(limb) for limb in LIMBS]]
    assert np.ptp(limbs, axis=0).max() < 1e-6  # arms and legs are single CMU bones: rigid
    femur = np.linalg.norm(joints[:, 5] - joints[:, 4], axis=-1)[0]
    assert 350 < femur < 500  # a thigh is about 0.43 m
    assert joints[:, 10, 1].mean() > joints[:, 0, 1].mean() > joints[:, 3, 1].mean()  # head above pelvis above ankle


def test_hop_distance_of_the_tree() -> None:
    d = hop_distance()
    assert d[3, 16] == 8 and d[0, 0] == 0 and (d == d.T).all()
