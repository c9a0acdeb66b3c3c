"""Pinhole cameras around the subject, 2D projection, and the two corruptions: noise and dropped joints.

A camera maps a world point ``X`` to camera coordinates ``X_c = R (X - C)`` (``C`` its centre, ``R`` the
rows of its right, down and forward axes) and to pixels ``u = f x_c / z_c + c_x``, ``v = f y_c / z_c + c_y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Camera", "look_at", "cameras_around", "add_noise", "drop_joints"]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: rotation ``R`` (world→camera), centre ``C`` (mm), focal ``f`` and principal point (px)."""

    R: np.ndarray
    C: np.ndarray
    f: float = 1000.0
    cx: float = 500.0
    cy: float = 500.0
    width: int = 1000
    height: int = 1000

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` to camera coordinates ``(..., 3)`` (x right, y down, z forward)."""
        return (np.asarray(points) - self.C) @ self.R.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` to pixels ``(..., 2)``; raises if a point is behind the camera."""
        pc = self.to_camera(points)
        z = pc[..., 2:3]
        if np.any(z <= 0):
            raise ValueError("a point lies behind the camera: place the cameras farther from the subject")
        return self.f * pc[..., :2] / z + np.array([self.cx, self.cy])


def look_at(centre: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """The world→camera rotation of a camera at ``centre`` looking at ``target`` (world ``up`` is +y)."""
    forward = np.asarray(target, float) - np.asarray(centre, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def cameras_around(
    target: np.ndarray,
    n: int = 4,
    radius: float = 5000.0,
    height: float = 1500.0,
    f: float = 1000.0,
    start_deg: float = 45.0,
) -> list[Camera]:
    """``n`` cameras evenly spaced on a circle of ``radius`` mm around ``target``, at ``height`` mm, facing it."""
    target = np.asarray(target, float)
    cams = []
    for k in range(n):
        a = np.deg2rad(start_deg + 360.0 * k / n)
        centre = np.array([target[0] + radius * np.cos(a), height, target[2] + radius * np.sin(a)])
        cams.append(Camera(look_at(centre, target), centre, f))
    return cams


def add_noise(uv: np.ndarray, sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of ``sigma_px`` pixels to each 2D coordinate (a detector's error)."""
    return uv + rng.normal(0.0, sigma_px, size=np.shape(uv)) if sigma_px > 0 else np.asarray(uv)


def drop_joints(shape: tuple[int, ...], p: float, rng: np.random.Generator) -> np.ndarray:
    """A visibility mask ``(..., J)``: each joint is dropped (occluded, 0) with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the drop probability must be in [0, 1], got {p}")
    return (rng.random(shape) >= p).astype(np.float32)
