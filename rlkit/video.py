"""Videos of evaluation episodes (`rlkit eval ... video=gif|mp4`): a gymnasium wrapper that renders
every step of the first N episodes and writes each episode to a file with imageio.

- Frames come from `env.render()`: RGB arrays where the env has `rgb_array`, else its `ansi` text,
  drawn as a terminal would (monospace, ANSI colours: the agent's highlighted cell stays visible).
- Frame rate: the env's `render_fps`; one frame per agent step, so Atari plays at 60 Hz / frame skip
  (15 fps for the usual skip of 4: real time).
- mp4 (H.264 through imageio-ffmpeg) streams frames to disk; a GIF is held in memory until the
  episode ends, so it is cut at GIF_MAX_FRAMES (use mp4 for whole Atari games).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.errors import UserError

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # gymnasium's rgb_array renderers import pygame
# pygame.init() (gymnasium's renderers call it even for rgb_array) opens a display and audio: off-screen
# drivers keep a headless machine quiet, and evaluation never shows a window
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

FORMATS = ("gif", "mp4")
GIF_MAX_FRAMES = 3000
ATARI_HZ = 60  # frames per second of the Atari 2600 (NTSC)
TEXT_SCALE = 2  # text frames: the 6x11 bitmap font drawn at twice its size


def writer_module() -> Any:
    """imageio.v2, or a UserError saying how to install the video extra."""
    try:
        import imageio.v2 as iio
    except ImportError:
        raise UserError("video needs imageio: pip install 'rlkit[video]' (make setup installs it)") from None
    return iio


def make_recordable(build: Callable[[str | None], Any], env_name: str) -> tuple[gym.Env, str]:
    """(env built with a render mode that works, that mode): rgb_array where it renders, else ansi.

    `build(render_mode)` makes the evaluation env. A UserError names what is missing (an env with no
    frames at all, or pygame for gymnasium's classic-control and toy-text renderers)."""
    probe = build(None)
    if not isinstance(probe, gym.Env):
        raise UserError(f"env '{env_name}' is not a gymnasium env with frames (a batch-native testbed); "
                        "drop video=")
    modes = list(probe.metadata.get("render_modes") or [])
    probe.close()
    missing = None
    for mode in ("rgb_array", "ansi"):
        if mode not in modes:
            continue
        env = build(mode)
        try:
            env.reset(seed=0)
            env.render()
            return env, mode
        except gym.error.DependencyNotInstalled as e:
            missing = str(e).split(",")[0]
            env.close()
    if missing:
        raise UserError(f"env '{env_name}' renders frames with a package that is not installed ({missing}); "
                        "pip install 'rlkit[video]' (it brings pygame)")
    raise UserError(f"env '{env_name}' renders no frames (render modes: {', '.join(modes) or 'none'}); "
                    "video needs rgb_array or ansi")


def frames_per_second(env: gym.Env) -> float:
    """Playback rate: one frame per agent step, at the env's own speed (Atari: 60 Hz / frame skip)."""
    skip, e = 1, env
    while isinstance(e, gym.Wrapper):
        skip *= int(getattr(e, "frame_skip", 1) or 1)
        e = e.env
    base = env.unwrapped
    inner = getattr(base, "_frameskip", 1)
    skip *= inner if isinstance(inner, int) else 1
    if hasattr(base, "ale"):
        return ATARI_HZ / skip
    return float(env.metadata.get("render_fps") or 30) / skip


class RecordEpisodes(gym.Wrapper):
    """Renders every step of the first `episodes` episodes (counted by reset) into `folder/<name(i)>.<fmt>`."""

    def __init__(self, env: gym.Env, folder: Path, fmt: str, episodes: int, name: Callable[[int], str],
                 fps: float | None = None):
        super().__init__(env)
        if fmt not in FORMATS:
            raise UserError(f"video={fmt}: use video=gif or video=mp4")
        self.iio = writer_module()
        self.folder, self.fmt, self.episodes, self.name = Path(folder), fmt, episodes, name
        self.fps = fps or frames_per_second(env)
        self.index = -1
        self.videos: list[dict[str, Any]] = []
        self._writer: Any = None
        self._text: list[str] | None = None
        self._frames = 0
        self._cut = False
        self._path: Path | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._finish()
        obs, info = self.env.reset(**kwargs)
        self.index += 1
        if self.index < self.episodes:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._path = self.folder / f"{self.name(self.index)}.{self.fmt}"
            self._frames, self._cut, self._text = 0, False, None
            self._capture()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        if self._path is not None:
            self._capture()
            if out[2] or out[3]:
                self._finish()
        return out

    def close(self) -> None:
        self._finish()
        super().close()

    # -- internals --------------------------------------------------------------------------------
    def _capture(self) -> None:
        frame = self.env.render()
        if isinstance(frame, str):  # ansi text: kept as text, drawn at the end with the episode's largest size
            self._text = (self._text or []) + [frame]
            self._frames += 1
            return
        if self.fmt == "gif" and self._frames >= GIF_MAX_FRAMES:
            self._cut = True
            return
        if self._writer is None:
            self._writer = self._open()
        self._writer.append_data(_even(np.asarray(frame, dtype=np.uint8)) if self.fmt == "mp4" else frame)
        self._frames += 1

    def _open(self) -> Any:
        if self.fmt == "mp4":
            return self.iio.get_writer(self._path, fps=self.fps, codec="libx264", macro_block_size=1,
                                       ffmpeg_log_level="error")
        return self.iio.get_writer(self._path, duration=1000.0 / self.fps, loop=0)

    def _finish(self) -> None:
        if self._path is None:
            return
        if self._text is not None:
            frames = text_frames(self._text)
            if self.fmt == "gif" and len(frames) > GIF_MAX_FRAMES:
                frames, self._cut = frames[:GIF_MAX_FRAMES], True
            self._writer = self._open()
            for f in frames:
                self._writer.append_data(_even(f) if self.fmt == "mp4" else f)
            self._frames = len(frames)
        if self._writer is not None:
            self._writer.close()
        self.videos.append({"path": str(self._path), "episode": self.index, "frames": self._frames,
                            "fps": round(self.fps, 3), "cut": self._cut})
        self._writer, self._text, self._path = None, None, None


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad H and W to even sizes (H.264 in yuv420p needs them)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


# --------------------------------------------------------------------------------------------------
# text frames (ANSI renders)

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_PALETTE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188),
            (17, 168, 205), (229, 229, 229)]
_BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214),
           (41, 184, 219), (255, 255, 255)]
FG, BG = (230, 230, 230), (20, 20, 24)


def parse_ansi(text: str) -> list[list[tuple[str, tuple[int, int, int], tuple[int, int, int]]]]:
    """Lines of (char, foreground, background) cells; SGR colour codes (30-37, 40-47, 90-97, 100-107,
    bold, reset) are applied, other escape codes dropped."""
    lines: list[list[tuple[str, tuple[int, int, int], tuple[int, int, int]]]] = [[]]
    fg, bg, bold = FG, BG, False
    pos = 0
    for m in [*_SGR.finditer(text), None]:
        chunk = text[pos:m.start() if m else len(text)]
        for ch in chunk:
            if ch == "\n":
                lines.append([])
            elif ch != "\r":
                lines[-1].append((ch, fg, bg))
        if m is None:
            break
        pos = m.end()
        for code in [int(c) for c in m.group(1).split(";") if c.isdigit()] or [0]:
            if code == 0:
                fg, bg, bold = FG, BG, False
            elif code == 1:
                bold = True
            elif 30 <= code <= 37:
                fg = (_BRIGHT if bold else _PALETTE)[code - 30]
            elif 90 <= code <= 97:
                fg = _BRIGHT[code - 90]
            elif 40 <= code <= 47:
                bg = _PALETTE[code - 40]
            elif 100 <= code <= 107:
                bg = _BRIGHT[code - 100]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


def text_frames(texts: list[str]) -> list[np.ndarray]:
    """Draw ANSI text renders as RGB images of one common size (the largest of the episode)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default_imagefont()  # a fixed 6x11 bitmap font: columns line up
    cw, ch = 6, 11
    parsed = [parse_ansi(t) for t in texts]
    rows = max(len(p) for p in parsed)
    cols = max(1, max(len(line) for p in parsed for line in p))
    pad = 4
    size = (cols * cw + 2 * pad, rows * ch + 2 * pad)
    out = []
    for lines in parsed:
        img = Image.new("RGB", size, BG)
        draw = ImageDraw.Draw(img)
        for r, line in enumerate(lines):
            for c, (char, fg, bg) in enumerate(line):
                x, y = pad + c * cw, pad + r * ch
                if bg != BG:
                    draw.rectangle([x, y, x + cw - 1, y + ch - 1], fill=bg)
                if char != " ":
                    draw.text((x, y), char, fill=fg, font=font)
        img = img.resize((size[0] * TEXT_SCALE, size[1] * TEXT_SCALE), Image.NEAREST)
        out.append(np.asarray(img))
    return out
