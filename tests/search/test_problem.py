"""Problem loading: the embedded default, overrides, and one-line errors naming the field."""

import pytest
import yaml

from tokenfab.search.problem import DesignInputError, DesignProblem


def test_default_problem_has_three_classes_on_two_models():
    p = DesignProblem.load()
    assert [c.name for c in p.classes] == ["chat", "rag", "reasoning"]
    assert {c.name: c.model for c in p.classes}["reasoning"] == "deepseek-r1"
    demand = p.model_demand()
    assert sum(demand.values()) == pytest.approx(p.demand / 86400)
    rag = next(c for c in p.classes if c.name == "rag")
    assert rag.isl_p99 > rag.isl_mean > 0 and rag.isl_sq_mean > rag.isl_mean ** 2


@pytest.mark.parametrize("overrides, field", [
    ({"traffic": "chat+nosuch"}, "preset 'nosuch' unknown"),
    ({"models": ["nosuch-model"]}, "model 'nosuch-model' unknown"),
    ({"node": "n1"}, "constraints.node"),
    ({"power_w": -5}, "constraints.power_w"),
    ({"demand_output_tokens_per_day": 0}, "demand_output_tokens_per_day"),
])
def test_bad_input_names_the_field(overrides, field):
    with pytest.raises(DesignInputError) as e:
        DesignProblem.load(**overrides)
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def test_user_file_inherits_the_default(small_file):
    p = DesignProblem.load(small_file)
    assert p.model_ids == ["llama-3.1-8b"] and [c.name for c in p.classes] == ["chat"]
    assert p.space_values("cores") == [64, 128, 192]


@pytest.mark.parametrize("axis, values", [("ep", [0]), ("ep", "8"), ("mtp", [-1]), ("mtp", [])])
def test_bad_ep_or_mtp_axis_names_the_field(tmp_path, axis, values):
    f = tmp_path / "p.yaml"
    dep = dict(DesignProblem.load().raw["deployment"], **{axis: values})
    f.write_text(yaml.safe_dump({"deployment": dep}))
    with pytest.raises(DesignInputError) as e:
        DesignProblem.load(f)
    assert f"deployment.{axis}" in str(e.value) and "\n" not in str(e.value)


def test_default_problem_searches_ep_and_mtp():
    dep = DesignProblem.load().raw["deployment"]
    assert max(dep["ep"]) > 1 and max(dep["mtp"]) >= 1


def test_a_misspelt_section_is_named(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("constrains:\n  node: n3\n")
    with pytest.raises(DesignInputError, match="unknown field 'constrains'"):
        DesignProblem.load(f)


def test_yaml_1_2_numbers_in_a_problem(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("demand_output_tokens_per_day: 5.0e12\n")
    assert DesignProblem.load(f).demand == 5e12


def test_a_file_without_assign_routes_only_its_own_classes(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("traffic: chat\nmodels: [llama-3.1-8b]\n")
    prob = DesignProblem.load(f)
    assert set(prob.raw.get("assign") or {}) <= {"chat"}
