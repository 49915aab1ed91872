"""The retraining units in scripts/systemd: systemd accepts them, and they say what we rely on.

``systemd-analyze verify`` parses a unit the way PID 1 would (unknown keys, bad values,
settings that conflict) without a running systemd, so it works in a container. Offline it
checks one host-specific thing: that ExecStart's binary exists and is executable. It does
not resolve User=, WorkingDirectory= or EnvironmentFile=. So the test verifies a copy in
which only the binary path is swapped for an existing executable; whatever verify still
prints is a problem in our unit files. verify exits 0 even when it warns or refuses a unit,
so the test reads its output, not its exit code.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "scripts" / "systemd"
SERVICE = SYSTEMD_DIR / "rtml-retrain@.service"
TIMER = SYSTEMD_DIR / "rtml-retrain@.timer"
ENV_EXAMPLE = SYSTEMD_DIR / "rtml.env.example"
INSTANCE = "lender_match"
RTML_BIN = "/opt/rtml/.venv/bin/rtml"

ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
if not Path(ANALYZE).is_file():
    pytest.skip("systemd-analyze is not installed", allow_module_level=True)

# A key whose name says secret, with a value after the "=" (the unit files must have none).
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b\w*(password|passwd|secret|token|api_?key|access_key|credential)\w*\s*=\s*\S"
)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
PLACEHOLDER = "CHANGE_ME"
# "<unit file path>:<line>: ..." is how systemd reports a problem in a file it parsed.
FILE_PROBLEM = re.compile(r"^(/\S+?):\d+: ")


class _MultiDict(dict):
    """configparser storage that keeps every value of a repeated key (systemd allows them)."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def _read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    parser = configparser.ConfigParser(
        strict=False,
        interpolation=None,
        dict_type=_MultiDict,
        delimiters=("=",),
        comment_prefixes=("#", ";"),
        empty_lines_in_values=False,
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return {
        section: {key: value.split("\n") for key, value in parser.items(section)}
        for section in parser.sections()
    }


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ANALYZE, "--no-pager", *args], capture_output=True, text=True, timeout=60
    )


def _verify(unit_dir: Path) -> list[str]:
    """Lines verify prints for the instance of our service and timer in ``unit_dir``."""
    result = _analyze(
        "verify",
        "--man=no",  # would run man(1) for every Documentation=man: of every dependency
        "--generators=no",
        str(unit_dir / f"rtml-retrain@{INSTANCE}.service"),
        str(unit_dir / f"rtml-retrain@{INSTANCE}.timer"),
    )
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.strip() and _about_us(line, unit_dir)]


def _about_us(line: str, unit_dir: Path) -> bool:
    """False only for a problem reported inside some other unit file (the host's, not ours)."""
    match = FILE_PROBLEM.match(line)
    return match is None or Path(match.group(1)).parent == unit_dir


def _copy_units(target: Path, binary: str | None) -> Path:
    """The two units in ``target``; with ``binary``, ExecStart runs that instead of rtml."""
    shutil.copy(TIMER, target / TIMER.name)
    text = SERVICE.read_text(encoding="utf-8")
    if binary is not None:
        assert text.count(RTML_BIN) == 1, f"expected {RTML_BIN} once, in ExecStart"
        text = text.replace(RTML_BIN, binary)
    (target / SERVICE.name).write_text(text, encoding="utf-8")
    return target


@pytest.fixture
def verifiable(tmp_path: Path) -> Path:
    true = shutil.which("true")
    assert true, "true(1) is part of coreutils"
    return _copy_units(tmp_path, true)


def test_verify_prints_nothing_for_our_units(verifiable: Path) -> None:
    assert _verify(verifiable) == []


def test_verify_only_misses_the_rtml_binary_before_the_swap(tmp_path: Path) -> None:
    """The swap hides exactly one complaint, the one a host without /opt/rtml must give."""
    if Path(RTML_BIN).exists():
        pytest.skip(f"{RTML_BIN} exists on this machine: verify has nothing to miss")
    lines = _verify(_copy_units(tmp_path, binary=None))
    assert lines == [
        f"rtml-retrain@{INSTANCE}.service: Command {RTML_BIN} is not executable: "
        "No such file or directory"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("\nNice=10\n", "\nNice=10\nNiceness=5\n"), "Unknown key 'Niceness'"),
        (
            ("\nType=oneshot\n", "\nType=oneshot\nRestart=always\n"),
            "isn't allowed for Type=oneshot",
        ),
    ],
)
def test_verify_would_catch_a_broken_unit(
    verifiable: Path, edit: tuple[str, str], expected: str
) -> None:
    """Guards the test above against passing because verify checked nothing."""
    service = verifiable / SERVICE.name
    text = service.read_text(encoding="utf-8")
    assert edit[0] in text
    service.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    assert any(expected in line for line in _verify(verifiable))


def test_sandbox_exposure_stays_low(verifiable: Path) -> None:
    """Hardening does not silently erode: systemd's own score, 1.7 of 10 ("OK") today."""
    result = _analyze(
        "security",
        "--offline=true",
        "--threshold=30",  # on systemd's internal 0..100 scale: fail above 3.0
        str(verifiable / f"rtml-retrain@{INSTANCE}.service"),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_service_runs_rtml_retrain_for_the_instance() -> None:
    service = _read_unit(SERVICE)["Service"]
    assert service["Type"] == ["oneshot"]
    (exec_start,) = service["ExecStart"]
    assert exec_start.startswith(f"{RTML_BIN} retrain %i")
    assert "--quiet" in exec_start.split()
    assert service["EnvironmentFile"] == ["/etc/rtml/rtml.env"]
    assert service["User"] == ["rtml"] and service["Group"] == ["rtml"]
    assert service["WorkingDirectory"] == ["/opt/rtml"]
    assert service["TimeoutStartSec"] == ["2h"]


def test_service_sandbox_leaves_the_cache_writable() -> None:
    service = _read_unit(SERVICE)["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
    }.items():
        assert service[key] == [value], key
    # Under ProtectSystem=strict only CacheDirectory= (/var/cache/<name>) is writable: the
    # cache the unit points rtml at must be that folder.
    environment = dict(line.split("=", 1) for line in service["Environment"])
    assert environment["RTML_CACHE_DIR"] == f"/var/cache/{service['CacheDirectory'][0]}"
    env_example = dict(_assignments(ENV_EXAMPLE.read_text(encoding="utf-8")))
    assert env_example["RTML_CACHE_DIR"] == environment["RTML_CACHE_DIR"]


def test_timer_is_daily_persistent_and_installable() -> None:
    timer = _read_unit(TIMER)
    assert timer["Timer"]["OnCalendar"], "no OnCalendar="
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    # No Unit=: the timer starts the service of the same name, rtml-retrain@<model>.service,
    # which must therefore ship alongside (verify does not check that).
    assert "Unit" not in timer["Timer"]
    assert SERVICE.is_file()


def test_systemd_accepts_the_calendar_and_it_fires_daily() -> None:
    for spec in _read_unit(TIMER)["Timer"]["OnCalendar"]:
        result = _analyze("calendar", "--iterations=2", spec)
        assert result.returncode == 0, result.stderr
        elapses = re.findall(r"(?:Next elapse|Iter\. #2): \w+ (\S+ \S+)", result.stdout)
        first, second = (datetime.fromisoformat(value) for value in elapses)
        assert second - first == timedelta(days=1), result.stdout


@pytest.mark.parametrize("path", [SERVICE, TIMER], ids=lambda path: path.name)
def test_unit_files_hold_no_secrets(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for pattern in (SECRET_ASSIGNMENT, URL_WITH_PASSWORD, AWS_KEY_ID):
            assert not pattern.search(line), f"{path.name}:{number}: looks like a secret: {line}"


def test_env_example_has_only_placeholders() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert not AWS_KEY_ID.search(text)
    # Commented-out examples (#KEY=value) count too: people uncomment them.
    for key, value in _assignments(text, commented=True):
        if SECRET_ASSIGNMENT.search(f"{key}={value}"):
            assert value in ("", PLACEHOLDER), f"{key} must be empty or {PLACEHOLDER}"
        password = URL_WITH_PASSWORD.search(value)
        assert password is None or password.group(1) == PLACEHOLDER, key


def test_env_example_is_a_systemd_environment_file() -> None:
    """KEY=value lines only: no `export`, no shell syntax systemd would take literally."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    active = [line for line in lines if line.strip() and not line.startswith("#")]
    for line in active:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=[^$`]*", line), line
    keys = {line.split("=", 1)[0] for line in active}
    assert {"MLFLOW_TRACKING_URI", "RTML_CACHE_DIR"} <= keys


def _assignments(text: str, commented: bool = False) -> list[tuple[str, str]]:
    prefix = "#?" if commented else ""
    return re.findall(rf"(?m)^{prefix}([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text)
