"""The deployment files describe a deployment the settings accept: every bot process of the
compose file and of Procfile.scale shares one PostgreSQL, and their shards cover 0…N-1 once."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"DISCORD_TOKEN": "t", "MJ_API_BASE_URL": "http://api.test", "MJ_API_KEY": "k"}


def _check_shards(processes: list[dict[str, str]]) -> None:
    settings = [load_settings({**BASE, **env}, env_file=None) for env in processes]
    counts = {s.shard_count for s in settings}
    assert len(counts) == 1 and None not in counts, "every process names the same SHARD_COUNT"
    (count,) = counts
    assert count is not None
    covered = sorted(i for s in settings for i in (s.shard_ids or ()))
    assert covered == list(range(count)), "together the processes run every shard once"
    assert all(s.database_url.startswith("postgresql://") for s in settings)


def test_the_compose_file_runs_two_bots_over_one_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    bots = {name: svc for name, svc in compose["services"].items() if name.startswith("bot")}
    assert len(bots) == 2
    envs = [{k: str(v) for k, v in svc["environment"].items()} for svc in bots.values()]
    assert len({env["DATABASE_URL"] for env in envs}) == 1
    _check_shards(envs)
    assert all(svc["depends_on"]["db"]["condition"] == "service_healthy" for svc in bots.values())


def test_procfile_scale_splits_the_shards_between_its_processes() -> None:
    envs = []
    for line in (ROOT / "Procfile.scale").read_text().splitlines():
        _, command = line.split(":", 1)
        words = shlex.split(command)
        env = dict(w.split("=", 1) for w in words if "=" in w and w.split("=")[0].isupper())
        assert words[len(env) :] == ["python", "-m", "bot"]
        envs.append({**env, "DATABASE_URL": "postgresql://bot@db/mjcord"})
    _check_shards(envs)
