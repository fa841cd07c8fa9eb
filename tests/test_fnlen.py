"""emunet.tools.fnlen: functions over 60 lines and files over 800, found and named."""

from emunet.tools import fnlen


def _source(body_lines: int) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"class C:\n    def m(self):\n{body.replace('    ', '        ')}\n\ndef f():\n{body}"


def test_functions_over_the_limit_are_named_with_their_length() -> None:
    findings = fnlen.scan_source(_source(60), "m.py")
    assert [(f.name, f.line, f.lines) for f in findings] == [("C.m", 2, 61), ("f", 65, 61)]
    assert str(findings[1]) == "m.py:65: f() 61 lines"


def test_functions_at_the_limit_pass() -> None:
    assert fnlen.scan_source(_source(59), "m.py") == []


def test_long_files_are_reported() -> None:
    findings = fnlen.scan_source("x = 1\n" * 801, "big.py")
    assert [(f.name, f.lines) for f in findings] == [("", 801)]
    assert str(findings[0]) == "big.py:1: file 801 lines"


def test_main_exit_status(tmp_path, capsys) -> None:
    good = tmp_path / "good.py"
    good.write_text("def f():\n    return 1\n")
    assert fnlen.main([str(good)]) == 0
    bad = tmp_path / "bad.py"
    bad.write_text(_source(70))
    assert fnlen.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.py:2: C.m() 71 lines" in out
    assert fnlen.main([str(tmp_path / "missing")]) == 2
