"""What a fresh clone relies on: install files agree, CI runs what README promises."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def requirement_names(reqs):
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = [p for p in pip if not p.startswith("-e")]
    assert requirement_names(conda) == requirement_names(declared)
    assert "torch==2.13.0" in declared


def test_ci_runs_the_test_command_the_readme_shows():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1] == "make test"


def test_package_reads_nothing_outside_the_repository():
    for path in (ROOT / "elpo_min").glob("*.py"):
        assert "shared/" not in path.read_text(), path


def test_every_recipe_config_loads_and_names_an_instruct_model():
    from elpo_min.config import Config

    recipes = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(recipes) == 4
    for path in recipes:
        cfg = Config.load(str(path))
        assert cfg.task == "gsm" and cfg.lora_rank > 0 and "Instruct" in cfg.model, path.name
    for path in (ROOT / "configs" / "accelerate").glob("*.yaml"):
        assert yaml.safe_load(path.read_text())["distributed_type"] in ("MULTI_GPU", "FSDP", "DEEPSPEED"), path


def test_gpu_check_smoke_run_on_cpu(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {r["mode"] for r in result["update"]} >= {"bf16 LoRA"}
    assert all(r["update_s"] > 0 for r in result["update"])
    decoders = {r["decoder"] for r in result["decode"] if "steps_per_s" in r}
    assert {"rollout engine", "generate, dynamic cache"} <= decoders
    assert "| batch | decoder | steps/s |" in done.stdout
