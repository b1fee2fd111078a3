"""`mediawatch run`: the long-running service.

    service.py   the daemon: one reactor, one crawler, scheduled jobs, signals, the lock
    schedule.py  when each source is polled: triggers, jitter, first runs, backoff
    watchdog.py  source health for the operator: failing, silent, recovered
    site.py      the HTTP side: /healthz, /metrics, per-topic feeds
    metrics.py   Prometheus metrics
"""
