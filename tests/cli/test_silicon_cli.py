"""A bad chip design YAML is refused in one line by every command that takes one."""


def test_design_bad_input_is_one_line(tmp_path, one_line_error):
    bad = tmp_path / "bad.yaml"
    bad.write_text("node: n5\nclock_ghz: [1\n")
    assert "not valid YAML" in one_line_error(["silicon", str(bad)])
    bad.write_text("node: n9\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf16: 1}}\n")
    assert "'node'" in one_line_error(["silicon", str(bad)])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 2048\nmatrix: {rows: 64, cols: 64, precisions: {bf16: 1}}\n")
    assert "chiplets.count" in one_line_error(["silicon", str(bad)])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf16: 1}}\n"
                   "memory: {type: HBM3E, stacks: 30, gb_per_stack: 24}\n")
    assert "memory.stacks" in one_line_error(["tco", "--hardware", str(bad), "--input-len", "9", "--output-len", "9"])
    bad.write_text("node: n5\nclock_ghz: 1\ncores: 4\nmatrix: {rows: 8, cols: 8, precisions: {bf17: 1}}\n")
    assert "matrix.precisions" in one_line_error(["predict", "--scenario", "memcopy", "--hardware", str(bad)])
    assert "preset" in one_line_error(["tco", "--hardware", "h100-sxm", "--workload", "nosuch"])
