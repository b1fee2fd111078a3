"""The deployment files: docker-compose.yml runs PostgreSQL, Redis and N members with health
checks and no secret in the file; deploy/config.yaml is the mission's config on them."""
from __future__ import annotations

from pathlib import Path

import yaml

from crawler.config import load_config

REPO = Path(__file__).resolve().parents[1]
ENV = {"POSTGRES_PASSWORD": "pgSecret1", "REDIS_PASSWORD": "redisSecret2", "SMTP_USER": "smtpUser3",
       "SMTP_PASSWORD": "smtpSecret4", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T9/B9/slackSecret5"}


def test_compose_has_three_healthchecked_services_and_no_secret() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    services = yaml.safe_load(text)["services"]
    assert set(services) == {"postgres", "redis", "mediawatch"}
    assert all("healthcheck" in s for s in services.values())
    assert "/healthz" in str(services["mediawatch"]["healthcheck"]["test"])
    member = services["mediawatch"]
    assert "container_name" not in member  # --scale names the replicas
    assert all(":8787" in p and not p.split(":")[1] for p in member["ports"])  # no fixed host port
    assert {"./deploy/config.yaml:/config/config.yaml:ro"} <= set(member["volumes"])
    assert all(s["condition"] == "service_healthy" for s in member["depends_on"].values())
    for value in (*ENV.values(), "mediawatch:mediawatch"):
        assert value not in text
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()
    example = (REPO / ".env.example").read_text()
    assert all(f"{name}=" in example for name in ENV)


def test_the_deployment_config_is_the_missions_on_postgresql_and_redis() -> None:
    deployed = load_config(REPO / "deploy" / "config.yaml", env=ENV)
    mission = load_config(REPO / "config.yaml", env=ENV)
    assert deployed.database == ("postgresql+psycopg://mediawatch:pgSecret1@postgres:5432/"
                                 "mediawatch")
    assert deployed.queue == "redis://:redisSecret2@redis:6379/0"
    assert {"pgSecret1", "redisSecret2"} <= deployed.secrets  # masked in every log line
    for key in ("sources", "topics", "channels", "aliases", "crawl", "dedupe", "digest"):
        assert getattr(deployed, key) == getattr(mission, key), key
