"""docs/CHECK.md's tables come from the simulation's committed results: decided again from
the stored figures by the check's own rule (`--reanalyse --markdown`, no training), each
table's lines are in the page as they print."""

import shutil
import subprocess
import sys

from ..conftest import PROJECT

RESULTS = PROJECT / "benchmarks" / "results" / "check_simulation.json"


def test_the_pages_tables_are_the_committed_runs_decided_by_todays_rule(tmp_path):
    copy = tmp_path / "check_simulation.json"
    shutil.copy(RESULTS, copy)  # --reanalyse rewrites the file it reads
    printed = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "check_simulation.py"), "--reanalyse",
                              str(copy), "--markdown"], capture_output=True, text=True, check=True, cwd=PROJECT).stdout
    page = (PROJECT / "docs" / "CHECK.md").read_text()
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert len(rows) > 40 and any(line.startswith("| **all** | | with |") for line in rows)
    missing = [line for line in rows if line not in page]
    assert not missing, missing[:3]
