"""Training scenes for the stereo features: generated rectified pairs with
exact ground truth, in the spirit of the synthetic sets deep stereo is trained
on (Mayer et al., CVPR 2016), small enough to make on the fly.

Each scene is a back surface, often a ground plane, and 2-6 objects in front
(rectangles, ellipses, thin bars): slanted planes and curved (quadratic)
surfaces, so disparities vary inside a surface. Surfaces are textured with
crops of real photos that ship inside packages (scikit-learn's sample images,
matplotlib's sample data), procedural noise, repeated stripes, or almost
nothing (textureless regions). The right view is rendered from the geometry
(not warped from the left image), with a z-buffer, so occlusions are exact;
then it gets the differences a second camera brings: gain, offset, gamma,
blur and sensor noise.

scikit-image's sample images (the Middlebury pair included) are evaluation
data and are never used here.
"""

from __future__ import annotations

import functools

import numpy as np

from kerazoo.app.demos.stereo_data import _noise_texture, _sample_rows, covered


@functools.lru_cache(maxsize=1)
def photo_textures() -> tuple:
    """Real photos shipped by scikit-learn and matplotlib, float32 RGB in [0, 1]."""
    from pathlib import Path

    import matplotlib
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(image, np.float32) / 255 for image in load_sample_images().images]
    sample_data = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        if (sample_data / name).is_file():
            with Image.open(sample_data / name) as image:
                photos.append(np.asarray(image.convert("RGB"), np.float32) / 255)
    return tuple(photos)


def _photo_crop(rng, photos, height, width):
    photo = photos[rng.integers(len(photos))]
    scale = rng.uniform(0.5, 1.6)
    need_h, need_w = int(np.ceil(height / scale)) + 1, int(np.ceil(width / scale)) + 1
    reps = (max(1, -(-need_h // photo.shape[0])), max(1, -(-need_w // photo.shape[1])), 1)
    if reps != (1, 1, 1):  # mirrored tiling keeps the texture continuous
        photo = np.tile(np.concatenate([photo, photo[:, ::-1]], axis=1), reps)
    y0 = rng.integers(0, photo.shape[0] - need_h + 1)
    x0 = rng.integers(0, photo.shape[1] - need_w + 1)
    crop = photo[y0 : y0 + need_h, x0 : x0 + need_w]
    ys = np.minimum((np.arange(height) / scale).astype(int), need_h - 1)
    xs = np.minimum((np.arange(width) / scale).astype(int), need_w - 1)
    crop = crop[ys][:, xs]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    # Colour jitter: the same photo must not always be the same surface.
    crop = crop * rng.uniform(0.6, 1.2, 3) + rng.uniform(-0.1, 0.1, 3)
    return np.clip(crop, 0, 1).astype(np.float32)


def _stripes(rng, height, width):
    period = rng.uniform(3, 14)
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    wave = 0.5 + 0.35 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
    colour_a, colour_b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    return (wave[..., None] * colour_a + (1 - wave[..., None]) * colour_b).astype(np.float32)


def _flat(rng, height, width):
    colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    ramp = np.linspace(0, rng.uniform(-0.05, 0.05), width, dtype=np.float32)[None, :, None]
    return np.clip(np.broadcast_to(colour, (height, width, 3)) + ramp, 0, 1)


def texture(rng, height, width, photos=None):
    """One surface's texture, (height, width, 3) in [0, 1]."""
    photos = photo_textures() if photos is None else photos
    kind = rng.choice(4, p=[0.55, 0.25, 0.1, 0.1])
    if kind == 0:
        return _photo_crop(rng, photos, height, width)
    if kind == 1:
        return _noise_texture(rng, height, width)
    if kind == 2:
        return _stripes(rng, height, width)
    return _flat(rng, height, width)


def _surfaces(rng, height, width, max_disparity):
    """Disparity functions d(x, y) and masks of the scene's surfaces, far to near."""
    surfaces = []
    back = max_disparity * rng.uniform(0.0, 0.25)
    slope_x = rng.uniform(-0.1, 0.1) * max_disparity / width
    surfaces.append(
        dict(
            a=back,
            b=slope_x,
            c=rng.uniform(-0.1, 0.1) * max_disparity / height,
            k=0.0,
            shape=("all",),
        )
    )
    if rng.random() < 0.5:
        horizon = height * rng.uniform(0.3, 0.7)
        rise = max_disparity * rng.uniform(0.2, 0.5) / (height - horizon)
        surfaces.append(
            dict(a=back - rise * horizon, b=0.0, c=rise, k=0.0, shape=("below", horizon))
        )
    for _ in range(rng.integers(2, 7)):
        kind = rng.choice(["rect", "ellipse", "bar"], p=[0.4, 0.4, 0.2])
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if kind == "bar":  # thin structures: 1-6 px wide, vertical or horizontal
            thin, long = rng.uniform(0.5, 3), rng.uniform(0.2, 0.8) * max(height, width)
            rx, ry = (thin, long) if rng.random() < 0.6 else (long, thin)
        else:
            rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.1, 0.4) * height
        surfaces.append(
            dict(
                a=max_disparity * rng.uniform(0.25, 0.95),
                b=rng.uniform(-0.15, 0.15) * max_disparity / width,
                c=rng.uniform(-0.1, 0.1) * max_disparity / height,
                # Curved: a bump of up to 15% of the range across the object.
                k=(rng.uniform(-0.15, 0.15) * max_disparity if rng.random() < 0.4 else 0.0),
                cx=cx,
                cy=cy,
                rx=rx,
                ry=ry,
                shape=(kind, cx, cy, rx, ry),
            )
        )
    return surfaces


def _disparity(s, x, y):
    d = s["a"] + s["b"] * x + s["c"] * y
    if s["k"]:
        d = d + s["k"] * (
            1 - np.minimum(1, ((x - s["cx"]) / s["rx"]) ** 2 + ((y - s["cy"]) / s["ry"]) ** 2)
        )
    return d


def _blur(image, sigma):
    if sigma < 0.3:
        return image
    radius = int(np.ceil(2.5 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    pad = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(t * pad[:, i : i + image.shape[1]] for i, t in enumerate(taps))
    return sum(t * rows[i : i + image.shape[0]] for i, t in enumerate(taps))


def _vignetting(rng, image):
    """Darker towards the corners, around a centre that need not be the image's."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height * rng.uniform(0.3, 0.7), width * rng.uniform(0.3, 0.7)
    r2 = ((ys - cy) ** 2 + (xs - cx) ** 2) / (0.25 * (height**2 + width**2))
    return image * (1.0 - rng.uniform(0.0, 0.35) * r2)[..., None]


def _jpeg(rng, image):
    """A JPEG round trip at a random quality, half the time."""
    import io

    from PIL import Image

    if rng.random() < 0.5:
        return image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(rng.integers(60, 96)))
    return np.asarray(Image.open(buffer).convert("RGB"))


def training_pair(rng, height, width, max_disparity, photos=None, **options):
    """`(left, right, disparity)`: uint8 views and float32 left-view disparity,
    NaN where the left pixel has no partner (occluded, or outside the right view),
    of a new scene of `_surfaces`. `options` are `render_pair`'s:
    `camera_differences`, `lens_and_codec` (each camera's own vignetting and
    JPEG compression on top of the gain, gamma, blur and noise differences),
    `photos_only` (a photo crop on every surface)."""
    surfaces = _surfaces(rng, height, width, max_disparity)
    return render_pair(rng, surfaces, height, width, max_disparity, photos, **options)


def render_pair(
    rng,
    surfaces,
    height,
    width,
    max_disparity,
    photos=None,
    camera_differences=True,
    lens_and_codec=False,
    photos_only=False,
    full_truth=False,
):
    """`training_pair` of given `surfaces` (far to near, as `_surfaces`
    makes them); `photos_only` textures every surface with a crop of
    `photos`; `full_truth` keeps the truth of occluded pixels and of those
    whose match falls outside the right view, as Middlebury's does."""
    photos = photo_textures() if photos is None else photos
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pad = int(max_disparity * 1.3) + 4
    left = np.zeros((height, width, 3), np.float32)
    right = np.zeros((height, width, 3), np.float32)
    gt = np.full((height, width), -np.inf, np.float32)
    depth_right = np.full((height, width), -np.inf, np.float32)
    for s in surfaces:
        if photos_only:
            tex = _photo_crop(rng, photos, height, width + 2 * pad)
        else:
            tex = texture(rng, height, width + 2 * pad, photos)
        d = _disparity(s, xs, ys)
        mask = covered(s["shape"], xs, ys) & (d >= gt)
        left[mask] = _sample_rows(tex, xs, pad)[mask]
        gt[mask] = d[mask]
        # The left column that lands on right column xr: xl = xr + d(xl, y),
        # found by fixed-point iteration (|dd/dx| < 1 makes it converge).
        xl = xs + s["a"]
        for _ in range(6):
            xl = xs + _disparity(s, xl, ys)
        d_r = _disparity(s, xl, ys)
        mask_r = covered(s["shape"], xl, ys) & (d_r >= depth_right)
        right[mask_r] = _sample_rows(tex, xl, pad)[mask_r]
        depth_right[mask_r] = d_r[mask_r]
    # Occluded: the right view shows something nearer where this pixel lands.
    xr = np.round(xs - gt).astype(int)
    inside = xr >= 0
    seen = depth_right[ys.astype(int), np.clip(xr, 0, width - 1)]
    visible = inside & (seen <= gt + 0.5)
    if camera_differences:
        gain, offset = rng.uniform(0.75, 1.25), rng.uniform(-0.08, 0.08)
        gamma = rng.uniform(0.8, 1.25)
        right = np.clip(right, 0, 1) ** gamma * gain + offset
        right = _blur(right, rng.uniform(0, 1.2))
        left = _blur(left, rng.uniform(0, 0.6))
    if lens_and_codec:
        left, right = _vignetting(rng, left), _vignetting(rng, right)
    noise = rng.uniform(0.5, 4.0)
    left = np.clip(left * 255 + rng.normal(0, noise, left.shape), 0, 255).astype(np.uint8)
    right = np.clip(right * 255 + rng.normal(0, noise, right.shape), 0, 255).astype(np.uint8)
    if lens_and_codec:
        left, right = _jpeg(rng, left), _jpeg(rng, right)
    disparity = np.where(visible | full_truth, gt, np.nan).astype(np.float32)
    return left, right, disparity


def training_set(count, height, width, max_disparity, seed, lens_and_codec=False, photo_share=0.0):
    """`count` pairs as arrays: left, right (count, H, W, 3) uint8, disparity
    (count, H, W, 1) float32 with -1 where unknown; each scene's own range is
    drawn in [max_disparity / 6, max_disparity]. `seed` is anything
    `np.random.default_rng` takes (a stream's `[seed, step]`). About
    `photo_share` of the scenes have photo crops on every surface, the rest
    the mix of `texture`."""
    rng = np.random.default_rng(seed)
    photos = photo_textures()
    lefts, rights, gts = [], [], []
    for _ in range(count):
        scene_max = rng.uniform(max_disparity / 6, max_disparity)
        # No draw at share 0: the stream stays the one earlier trainings saw.
        photos_only = photo_share > 0 and rng.uniform() < photo_share
        left, right, gt = training_pair(
            rng, height, width, scene_max, photos, lens_and_codec=lens_and_codec,
            photos_only=photos_only,
        )  # fmt: skip
        lefts.append(left)
        rights.append(right)
        gts.append(np.nan_to_num(gt, nan=-1.0)[..., None])
    return np.stack(lefts), np.stack(rights), np.stack(gts).astype(np.float32)


def with_camera_differences(left, right, seed):
    """A uint8 pair as two different cameras would have taken it: the right
    view's own gain, offset, gamma and blur, each view's own vignetting and
    JPEG compression. The geometry, and so the truth, is unchanged."""
    rng = np.random.default_rng(seed)
    left, right = (np.asarray(v, np.float32) / 255 for v in (left, right))
    gain, offset = rng.uniform(0.75, 1.25), rng.uniform(-0.08, 0.08)
    right = _blur(np.clip(right, 0, 1) ** rng.uniform(0.8, 1.25) * gain + offset, 0.8)
    left, right = _vignetting(rng, left), _vignetting(rng, right)
    left, right = (np.clip(v * 255, 0, 255).astype(np.uint8) for v in (left, right))
    return _jpeg(rng, left), _jpeg(rng, right)


def _photo_on_scene(rng, photo):
    """`photo` warped onto a generated layered scene of `EVALUATION_SIZE`,
    every surface a crop of it, with both cameras' differences and the
    truth everywhere: how R' and the tuning set P are made."""
    height, width = EVALUATION_SIZE
    surfaces = _surfaces(rng, height, width, EVALUATION_MAX_DISPARITY)
    return render_pair(
        rng, surfaces, height, width, EVALUATION_MAX_DISPARITY, (photo,),
        lens_and_codec=True, photos_only=True, full_truth=True,
    )  # fmt: skip


TUNING_PHOTO_PAIRS = 24  # set P's size: 6 scenes for each of the 4 training photos


def tuning_photo_pair(index, seed=0):
    """Set P, for tuning: a training photo (`photo_textures`, cycled by
    `index`) warped onto a generated layered scene, made as R'
    (`warped_photo_pair`) makes its pairs from the evaluation photos: the
    same sizes, camera differences and truth everywhere. Real textures
    (flat skies, repeated patterns, sharp edges), so settings chosen here
    are not only chosen on the generated noise of `synthetic_pair`.
    `(left, right, disparity)`; needs scikit-learn and matplotlib."""
    photos = photo_textures()
    return _photo_on_scene(np.random.default_rng([seed, 7101, index]), photos[index % len(photos)])


# ------------------------------------------------- evaluation sets (never trained on)

# scikit-image's sample photos that ship inside the package (no download),
# the Middlebury pair left out: evaluation data, never trained or tuned on.
EVALUATION_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "camera",
    "brick",
    "grass",
    "gravel",
)
EVALUATION_SIZE = (240, 320)  # height, width of an evaluation pair
EVALUATION_MAX_DISPARITY = 40


@functools.lru_cache(maxsize=1)
def evaluation_photos() -> tuple:
    """`EVALUATION_PHOTOS` as float32 RGB in [0, 1] (grey ones repeated)."""
    from skimage import data

    photos = []
    for name in EVALUATION_PHOTOS:
        image = np.asarray(getattr(data, name)(), np.float32) / 255
        photos.append(np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3])
    return tuple(photos)


def warped_photo_pair(index, seed=0):
    """Set R': evaluation photo `index` (`EVALUATION_PHOTOS`) warped onto a
    generated layered scene (every surface a crop of that photo: slanted,
    curved, thin), with the differences two cameras bring (gain, offset,
    gamma, blur, noise, vignetting, JPEG). `(left, right, disparity)`,
    `EVALUATION_SIZE`, the truth known everywhere (occluded pixels and the
    band outside the right view included); needs scikit-image."""
    return _photo_on_scene(np.random.default_rng([seed, 7001, index]), evaluation_photos()[index])


def see_through_pair(index, seed=0):
    """Set L: a scene seen through a fence or grille half-way back (bars
    2-8 px wide every 16-48 px, vertical, or a grid; nearer objects may
    stand in front of it): every bar hides a strip of what is behind it
    from one view only, so depth edges and occlusions are everywhere. The
    scene as `training_pair`'s, textured with the evaluation photos and the
    generated textures; the same camera differences and truth as
    `warped_photo_pair`; needs scikit-image."""
    rng = np.random.default_rng([seed, 7002, index])
    height, width = EVALUATION_SIZE
    top = EVALUATION_MAX_DISPARITY
    surfaces = _surfaces(rng, height, width, top)
    period_x = rng.uniform(16, 48)
    grid = rng.random() < 0.5
    fence = dict(
        a=top * rng.uniform(0.4, 0.7),
        b=rng.uniform(-0.1, 0.1) * top / width,
        c=rng.uniform(-0.05, 0.05) * top / height,
        k=0.0,
        shape=(
            "lattice",
            period_x,
            rng.uniform(2, min(8, period_x / 4)),
            rng.uniform(20, 60) if grid else 0.0,
            rng.uniform(2, 5),
            rng.uniform(0, period_x),
            rng.uniform(0, 60),
        ),
    )
    # Far to near, as the renderer paints them: the fence among the objects.
    surfaces.append(fence)
    surfaces.sort(key=lambda s: s["a"])
    return render_pair(
        rng, surfaces, height, width, top, evaluation_photos(), lens_and_codec=True,
        full_truth=True,
    )  # fmt: skip
