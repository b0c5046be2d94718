import pytest

from tokenfab.units import GB, GiB, parse_bytes, precision_bytes


def test_parse_bytes_units():
    assert parse_bytes("80GB") == 80 * GB
    assert parse_bytes("3.35TB/s") == pytest.approx(3.35e12)
    assert parse_bytes("64 MiB") == 64 * 2**20
    assert parse_bytes("1GiB") == GiB
    assert parse_bytes(42) == 42.0


@pytest.mark.parametrize("bad", ["eighty GB", "80 furlongs", ""])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ValueError):
        parse_bytes(bad)


def test_precision_bytes():
    assert precision_bytes("bf16") == 2
    assert precision_bytes("fp8") == 1
    assert 0.5 < precision_bytes("fp4") < 0.6  # 4 bits plus block scales
    with pytest.raises(ValueError, match="allowed"):
        precision_bytes("fp7")
