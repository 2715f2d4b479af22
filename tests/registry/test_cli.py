import subprocess
import sys
from importlib.metadata import entry_points


def test_csf_registry_help_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "csf.registry.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "csf-registry" in result.stdout
    assert "--zk" in result.stdout and "--tenant" in result.stdout


def test_csf_registry_is_an_installed_console_script() -> None:
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("csf-registry") == "csf.registry.cli:main"
