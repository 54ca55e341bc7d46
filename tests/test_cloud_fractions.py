"""radiometry.cloud_fractions: one cloud fraction per frame of a mask series, over the pixels with data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eo_sr import sensors
from eo_sr.errors import InvalidInputError
from eo_sr.radiometry import cloud_fractions

SCL = sensors.get_sensor("sentinel-2-l2a").cloud_mask
QA = sensors.get_sensor("landsat-c2-l2").cloud_mask


def test_a_boolean_series():
    series = np.zeros((3, 4, 5), bool)
    series[0, :2] = True  # 10 of 20
    series[2] = True
    assert cloud_fractions(series).tolist() == [0.5, 0.0, 1.0]


def test_only_valid_pixels_count_and_a_frame_without_any_is_nan():
    series = np.zeros((2, 4, 4), bool)
    series[0, 0] = True  # 4 cloudy pixels in row 0
    valid = np.ones((2, 4, 4), bool)
    valid[0, 2:] = False  # frame 0: 8 pixels with data, 4 of them cloudy
    valid[1] = False
    out = cloud_fractions(series, valid=valid)
    assert out[0] == 0.5 and np.isnan(out[1])
    # a spatial valid mask applies to every frame
    assert cloud_fractions(series, valid=valid[0])[0] == 0.5
    with pytest.raises(InvalidInputError, match="valid has shape"):
        cloud_fractions(series, valid=np.ones((3, 3), bool))
    with pytest.raises(InvalidInputError, match="boolean"):
        cloud_fractions(series, valid=np.ones((4, 4)))


def test_scl_with_the_sensors_cloud_mask():
    scl = np.full((2, 10, 10), 4, np.uint8)  # vegetation
    scl[0, :, :5] = 0  # half the frame has no data
    scl[0, 0, 5:] = 9  # 5 high-probability cloud pixels of the 50 with data
    scl[0, 1, 5:] = 3  # 5 cloud-shadow pixels
    scl[1, :2] = 10  # cirrus: 20 of 100
    scl[1, 2, :] = 6  # water stays clear
    out = cloud_fractions(scl, cloud_mask=SCL)
    assert out.tolist() == [0.2, 0.2]
    # only clouds, not shadows: name the classes
    assert cloud_fractions(scl, invalid_values=[8, 9, 10], nodata_values=[0]).tolist() == [0.1, 0.2]
    # without nodata_values, class 0 pixels count as clear
    assert cloud_fractions(scl, invalid_values=[3, 8, 9, 10]).tolist() == [0.1, 0.2]


def test_a_classification_needs_its_cloud_classes():
    with pytest.raises(InvalidInputError, match="invalid_values= .* or cloud_mask="):
        cloud_fractions(np.zeros((2, 3, 3), np.uint8))
    udm2 = sensors.get_sensor("planetscope").cloud_mask
    with pytest.raises(InvalidInputError, match="'bands' mask"):
        cloud_fractions(np.zeros((2, 3, 3), np.uint8), cloud_mask=udm2)
    with pytest.raises(InvalidInputError, match=r"\(T, H, W\)"):
        cloud_fractions(np.zeros((3, 3), bool))


def test_a_bitmask_series():
    qa = np.full((1, 4, 4), 1 << 6, np.uint16)  # clear
    qa[0, 0] = 1  # fill: no data
    qa[0, 1, :2] = (1 << 3) | (1 << 6)  # cloud
    qa[0, 2, :1] = 1 << 4  # cloud shadow
    assert cloud_fractions(qa, cloud_mask=QA)[0] == pytest.approx(3 / 12)


def test_a_dataarray_with_time_gives_a_series():
    xr = pytest.importorskip("xarray")
    times = pd.date_range("2023-06-01", periods=3, freq="5D")
    series = np.zeros((3, 2, 2), bool)
    series[1, 0, 0] = True
    da = xr.DataArray(series.transpose(1, 2, 0), dims=("y", "x", "time"), coords={"time": times})
    out = cloud_fractions(da)
    assert isinstance(out, pd.Series) and out.name == "cloud_fraction"
    assert list(out.index) == list(times) and out.tolist() == [0.0, 0.25, 0.0]
    with pytest.raises(InvalidInputError, match="'time' dimension"):
        cloud_fractions(da.rename(time="t"))
