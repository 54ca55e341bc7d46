"""The demo landscape's texture: fractal fields, line profiles and cast shadows."""
import numpy as np
import pytest

from eo_sr.demo import landscape as ls
from eo_sr.demo import realism
from eo_sr.demo import texture


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_fractal_field_has_the_asked_spectral_slope(beta):
    field = texture.fractal_field(np.random.default_rng(0), (512, 512), beta=beta, outer_px=4096)
    assert field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-4 and float(field.std()) == pytest.approx(1.0, abs=1e-3)
    patches = field.reshape(4, 128, 4, 128).transpose(0, 2, 1, 3).reshape(16, 128, 128)
    assert np.median(realism.spectral_slope(patches)) == pytest.approx(-beta, abs=0.15)


def test_line_profile_covers_its_width():
    d = np.linspace(-10, 10, 2001)
    cover = texture.line_profile(np.abs(d), width_m=2.0)
    assert cover.max() == pytest.approx(1.0) and cover[np.abs(d) > 4].max() < 0.001
    assert np.trapezoid(cover, d) == pytest.approx(2.0 * np.sqrt(np.pi / 8) * 2, rel=0.01)


@pytest.mark.parametrize("azimuth, elevation", [(135.0, 20.0), (160.0, 35.0), (250.0, 45.0)])
def test_a_pole_casts_its_shadow_away_from_the_sun_as_long_as_height_over_tan_elevation(azimuth, elevation):
    height = np.zeros((101, 101), np.float32)
    height[50, 50] = 10.0
    shadow = texture.cast_shadows(height, sun_azimuth=azimuth, sun_elevation=elevation, pixel_m=1.0, soft_m=0.01)
    rows, cols = np.nonzero(shadow > 0.5)
    east, south = cols - 50, rows - 50
    # away from the sun: east = -sin(azimuth), north = -cos(azimuth)
    away = np.array([-np.sin(np.radians(azimuth)), np.cos(np.radians(azimuth))])
    along = east * away[0] + south * away[1]
    assert along.min() >= 0.5  # nothing on the sun's side
    assert along.max() == pytest.approx(10.0 / np.tan(np.radians(elevation)), abs=1.5)
    assert shadow[50, 50] == 0  # the pole's top is lit


def test_no_sun_or_no_objects_no_shadow():
    flat = np.zeros((20, 20), np.float32)
    assert not texture.cast_shadows(flat, sun_azimuth=150, sun_elevation=30, pixel_m=2.5).any()
    tall = flat.copy()
    tall[10, 10] = 5
    assert not texture.cast_shadows(tall, sun_azimuth=150, sun_elevation=-3, pixel_m=2.5).any()


@pytest.fixture(scope="module")
def landscape():
    return ls.make_landscape(np.random.default_rng([0, 1]), 1920.0, (500000.0, 3900000.0))


def test_the_class_map_says_what_is_drawn(landscape):
    trees = landscape.classes == ls.CLASS_IDS["trees"]
    built = landscape.classes == ls.CLASS_IDS["built_up"]
    tall = landscape.height > 0
    assert trees.mean() > 0.01 and built.mean() > 0.0005
    assert np.array_equal(tall, trees | built)  # every tree pixel is a crown, every crown is trees
    # soil shows between plants only in fields and grassland
    veg = np.isin(landscape.classes, [ls.CLASS_IDS[c] for c in ls.VEGETATED])
    assert np.all(landscape.cover[~veg] == 1) and landscape.cover[veg].mean() < 0.95
    assert landscape.cover.min() >= 0 and landscape.cover.max() <= 1


def test_shadows_are_longer_under_a_low_sun(landscape):
    low, high = landscape.shade(135.0, 18.0), landscape.shade(150.0, 60.0)
    assert low.max() <= 1 and low.min() == pytest.approx(texture.SHADOW_DIFFUSE, abs=0.01)
    assert (low < 0.9).mean() > 2.5 * (high < 0.9).mean()


def test_reflectance_is_the_class_maps_summed(landscape):
    """The LR rendering (blurred class maps) and the HR one (reflectance) agree before any blur."""
    day, window = 90.0, (slice(100, 300), slice(200, 400))
    shade = landscape.shade(140.0, 30.0)
    refl = ls.reflectance(landscape, day, after_change=True, window=window, shade=shade[window])
    maps = ls.blurred_class_maps(landscape, 1e-6, after_change=True, shade=shade)
    table = ls.spectra(day)
    summed = sum(table[c][:, None, None] * m[window][None] for c, m in maps.items())
    np.testing.assert_allclose(summed, refl, rtol=1e-4, atol=1e-6)
