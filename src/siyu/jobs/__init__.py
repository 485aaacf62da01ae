"""Durable jobs: a job table with leases, retries, dead letters and cron schedules."""
