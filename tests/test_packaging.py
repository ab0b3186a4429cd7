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


def test_the_package_takes_a_torch_range_and_make_install_pins_the_cpu_build():
    # a pin in the package's requirements would swap a CUDA user's torch for the registry's
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = requirement_names(project["dependencies"])["torch"]
    assert torch_req.startswith("torch>=") and "==" not in torch_req
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_test_command_the_readme_shows():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1] == "make test"


def test_package_reads_nothing_outside_the_repository():
    for path in (ROOT / "elpo_min").rglob("*.py"):
        assert "shared/" not in path.read_text(), path


def test_every_recipe_config_loads_and_names_an_instruct_model():
    from elpo_min.launch import load_config

    recipes = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(recipes) == 4
    for path in recipes:
        cfg = load_config(str(path))
        assert cfg.task == "gsm" and cfg.lora_rank > 0 and "Instruct" in cfg.model, path.name
    for path in (ROOT / "configs" / "accelerate").glob("*.yaml"):
        assert yaml.safe_load(path.read_text())["distributed_type"] in (
            "MULTI_GPU",
            "FSDP",
            "DEEPSPEED",
        ), path


def test_gpu_check_smoke_run_on_cpu(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "check.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--tiny",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {r["mode"] for r in result["update"]} >= {"bf16 LoRA"}
    assert all(r["update_s"] > 0 for r in result["update"])
    assert result["sampler"]["eager"]["max_abs_logp_gap"] < 1e-5
    decoders = {r["decoder"] for r in result["decode"] if "steps_per_s" in r}
    assert {"fast decoder", "plain decoder", "generate, dynamic cache"} <= decoders
    assert "| batch | decoder | steps/s |" in done.stdout
    assert [r["update"] for r in result["packed"]] == ["per-leaf", "packed"]


def test_an_installed_wheel_carries_the_data_and_does_not_pin_torch(tmp_path):
    """A non-editable install finds the tiny policy and the splits inside the package, and its
    metadata accepts the torch a user already has (a range, not one version)."""
    import os
    import subprocess
    import sys
    import zipfile

    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("elpo_min-*.whl"))
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    metadata = next((tmp_path / "site").glob("elpo_min-*.dist-info/METADATA")).read_text()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: torch")]
    assert len(requires) == 1 and ">=" in requires[0] and "==" not in requires[0], requires
    code = (
        "from elpo_min.tasks import data_dir, load_task\n"
        "from elpo_min.models import load_policy\n"
        "task = load_task('toy', test_limit=5)\n"
        "model, tokenizer = load_policy()\n"
        "print(data_dir(), len(task.train), len(task.test), len(tokenizer))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    # run outside the checkout, so that only the unpacked wheel can be imported
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    folder, train, test, vocab = done.stdout.split()
    assert folder == str(tmp_path / "site" / "elpo_min" / "data")
    assert (int(train), int(test)) == (4000, 5) and int(vocab) > 100


def test_missing_shipped_data_says_where_to_get_it(tmp_path, monkeypatch):
    import pytest

    from elpo_min.tasks import files

    monkeypatch.setattr(files, "PACKAGE_DIR", tmp_path / "elpo_min")
    with pytest.raises(FileNotFoundError, match="install elpo_min from a wheel"):
        files.data_dir()
